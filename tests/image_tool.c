/* image_tool.c - runs src/image's resize, prep and paste on .npy files, for
 * test_image_vs_opencv.py to compare against cv2/numpy. Not a test by itself.
 *
 *   image_tool resize IN.npy W H OUT.npy                 uint8 HxWx3 -> uint8 HxWx3
 *   image_tool prep FRAME.npy X1 Y1 X2 Y2 CROP.npy INPUT.npy
 *   image_tool paste FRAME.npy CROP.npy PRED.npy X1 Y1 X2 Y2 OUT.npy   (OUT = the whole frame)
 *
 * Images are copied into buffers whose rows are padded (stride > 3 * width) so that the stride
 * handling is exercised too. Reads only what numpy.save writes: format 1.0, C order, '|u1'/'<f4'. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/paste.h"
#include "image/prepare.h"
#include "image/resize.h"

#define PAD 13 /* extra bytes per row */

typedef struct npy {
    int ndim, shape[3];
    int is_float;
    void *data;
    size_t count;
} npy;

static void die(const char *what) {
    fprintf(stderr, "image_tool: %s\n", what);
    exit(2);
}

static npy npy_read(const char *path) {
    npy a = {0};
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY\x01\x00", 8)) die("not npy 1.0");
    size_t hl = pre[8] | (size_t)pre[9] << 8;
    char hdr[1024];
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) die("bad npy header");
    hdr[hl] = 0;
    if (strstr(hdr, "'fortran_order': True")) die("fortran order");
    if (strstr(hdr, "'<f4'")) a.is_float = 1;
    else if (!strstr(hdr, "'|u1'")) die("dtype must be uint8 or float32");
    const char *s = strstr(hdr, "'shape': (");
    if (!s) die("no shape");
    s += 10;
    a.count = 1;
    while (*s && *s != ')' && a.ndim < 3) {
        a.shape[a.ndim] = (int)strtol(s, (char **)&s, 10);
        a.count *= (size_t)a.shape[a.ndim++];
        while (*s == ',' || *s == ' ') s++;
    }
    size_t es = a.is_float ? 4 : 1;
    a.data = malloc(a.count * es);
    if (!a.data || fread(a.data, es, a.count, f) != a.count) die("short npy data");
    fclose(f);
    return a;
}

static void npy_write(const char *path, const void *data, int ndim, const int *shape, int is_float) {
    char hdr[256], sh[96] = "";
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        char t[24];
        snprintf(t, sizeof t, "%d,%s", shape[i], (ndim > 1 && i == ndim - 1) ? "" : " ");
        strcat(sh, t);
        count *= (size_t)shape[i];
    }
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     is_float ? "<f4" : "|u1", sh);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) die(path);
    unsigned short hl = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, is_float ? 4 : 1, count, f);
    fclose(f);
}

/* HxWx3 uint8 npy -> padded buffer. */
static uint8_t *padded(const npy *a, size_t *stride) {
    if (a->is_float || a->ndim != 3 || a->shape[2] != 3) die("want uint8 HxWx3");
    *stride = (size_t)a->shape[1] * 3 + PAD;
    uint8_t *p = malloc(*stride * (size_t)a->shape[0]);
    if (!p) die("oom");
    for (int y = 0; y < a->shape[0]; y++)
        memcpy(p + y * *stride, (uint8_t *)a->data + (size_t)y * a->shape[1] * 3, (size_t)a->shape[1] * 3);
    return p;
}

static void write_padded(const char *path, const uint8_t *p, int w, int h, size_t stride) {
    uint8_t *t = malloc((size_t)w * h * 3);
    if (!t) die("oom");
    for (int y = 0; y < h; y++) memcpy(t + (size_t)y * w * 3, p + y * stride, (size_t)w * 3);
    int shape[3] = {h, w, 3};
    npy_write(path, t, 3, shape, 0);
    free(t);
}

int main(int argc, char **argv) {
    ls_err err = {0};
    resize_scratch s;
    if (resize_scratch_init(&s, PREP_SCRATCH_SIDE, PREP_SCRATCH_SIDE, &err)) die(err.msg);
    if (argc == 6 && !strcmp(argv[1], "resize")) {
        npy in = npy_read(argv[2]);
        size_t ss, ds;
        uint8_t *src = padded(&in, &ss);
        int w = atoi(argv[3]), h = atoi(argv[4]);
        ds = (size_t)w * 3 + PAD;
        uint8_t *dst = malloc(ds * (size_t)h);
        if (!dst) die("oom");
        if (resize_bgr(src, in.shape[1], in.shape[0], ss, dst, w, h, ds, &s, &err)) die(err.msg);
        write_padded(argv[5], dst, w, h, ds);
        free(in.data), free(src), free(dst);
    } else if (argc == 9 && !strcmp(argv[1], "prep")) {
        npy fr = npy_read(argv[2]);
        size_t fs;
        uint8_t *frame = padded(&fr, &fs);
        ls_box b = {atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6])};
        uint8_t *crop = malloc(PREP_CROP_BYTES);
        float *input = malloc(PREP_INPUT_FLOATS * sizeof(float));
        if (!crop || !input) die("oom");
        if (prep_frame(frame, fr.shape[1], fr.shape[0], fs, b, crop, input, &s, &err)) die(err.msg);
        int cshape[3] = {PREP_CROP, PREP_CROP, 3}, ishape[3] = {PREP_CHANNELS, PREP_SIZE, PREP_SIZE};
        npy_write(argv[7], crop, 3, cshape, 0);
        npy_write(argv[8], input, 3, ishape, 1);
        free(fr.data), free(frame), free(crop), free(input);
    } else if (argc == 10 && !strcmp(argv[1], "paste")) {
        npy fr = npy_read(argv[2]), cr = npy_read(argv[3]), pr = npy_read(argv[4]);
        if (cr.count != PREP_CROP_BYTES || cr.is_float) die("crop must be 328x328x3 uint8");
        if (pr.count != 3 * PREP_SIZE * PREP_SIZE || !pr.is_float) die("pred must be 3x320x320 float32");
        size_t fs;
        uint8_t *frame = padded(&fr, &fs);
        ls_box b = {atoi(argv[5]), atoi(argv[6]), atoi(argv[7]), atoi(argv[8])};
        if (paste_frame(pr.data, cr.data, b, frame, fr.shape[1], fr.shape[0], fs, &s, &err))
            die(err.msg);
        write_padded(argv[9], frame, fr.shape[1], fr.shape[0], fs);
        free(fr.data), free(cr.data), free(pr.data), free(frame);
    } else {
        die("usage: see the comment at the top of tests/image_tool.c");
    }
    resize_scratch_free(&s);
    return 0;
}
