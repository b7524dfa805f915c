/* bench_image.c - per-frame cost of the visual path on one core: prep (crop -> 328 -> 6x320x320
 * floats), paste (pred -> crop -> box -> frame) and full-frame JPEG q75 4:2:0, for a 1280x720
 * frame with a ~180 px face box and a 1920x1080 frame with a ~270 px box. Prints the median of
 * repeated runs (and the fastest run). Not a test: build with `make -C build bench_image`, run build/tests/bench_image. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_time.h"
#include "image/jpeg.h"
#include "image/paste.h"
#include "image/prepare.h"
#include "image/resize.h"


static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    return v[n / 2];
}

/* Smooth shading, edges and a little noise: JPEG cost depends on content. */
static void photo_like(uint8_t *px, int w, int h) {
    uint32_t seed = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                seed = seed * 1664525u + 1013904223u;
                double v = 128 + 90 * sin(x / (23.0 + 7 * c)) * cos(y / (17.0 + 5 * c));
                if (((x / 37 + y / 29) % 5) == 0) v = 240;
                v += (double)(seed >> 29) - 3.5;
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

static int bench(int w, int h, ls_box box, int reps) {
    ls_err e = {0};
    uint8_t *frame = malloc((size_t)w * h * 3), *crop = malloc(PREP_CROP_BYTES);
    float *input = malloc(PREP_INPUT_FLOATS * sizeof(float));
    float *pred = malloc(3 * PREP_SIZE * PREP_SIZE * sizeof(float));
    double *t_prep = malloc(reps * sizeof(double)), *t_paste = malloc(reps * sizeof(double)),
           *t_jpeg = malloc(reps * sizeof(double));
    resize_scratch sp, sq;
    jpeg_enc *enc = jpeg_enc_create(w, h, JPEG_DEFAULT_QUALITY, &e);
    if (!frame || !crop || !input || !pred || !t_prep || !t_paste || !t_jpeg || !enc ||
        resize_scratch_init(&sp, PREP_SCRATCH_SIDE, PREP_SCRATCH_SIDE, &e) ||
        resize_scratch_init(&sq, PREP_SCRATCH_SIDE, PREP_SCRATCH_SIDE, &e)) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return 1;
    }
    photo_like(frame, w, h);
    size_t jpeg_bytes = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        if (prep_frame(frame, w, h, (size_t)w * 3, box, crop, input, &sp, &e)) break;
        double t1 = bench_now_ms();
        for (size_t i = 0; i < 3 * PREP_SIZE * PREP_SIZE; i++) pred[i] = input[i]; /* "network" */
        double t2 = bench_now_ms();
        if (paste_frame(pred, crop, box, frame, w, h, (size_t)w * 3, &sq, &e)) break;
        double t3 = bench_now_ms();
        const uint8_t *jpg;
        if (jpeg_encode_bgr(enc, frame, w, h, (size_t)w * 3, &jpg, &jpeg_bytes, &e)) break;
        double t4 = bench_now_ms();
        t_prep[r] = t1 - t0, t_paste[r] = t3 - t2, t_jpeg[r] = t4 - t3;
    }
    if (e.code) {
        fprintf(stderr, "run: %s\n", e.msg);
        return 1;
    }
    double a = median(t_prep, reps), b = median(t_paste, reps), c = median(t_jpeg, reps);
    printf("%dx%d box %dx%d, median of %d: prep %.3f ms, paste %.3f ms, jpeg q75 %.3f ms "
           "(%zu bytes); total %.3f ms\n",
           w, h, box_width(box), box_height(box), reps, a, b, c, jpeg_bytes, a + b + c);
    /* The sorted arrays' first entries: the fastest run, less disturbed by other processes. */
    printf("%*s fastest: prep %.3f ms, paste %.3f ms, jpeg q75 %.3f ms\n", 20, "", t_prep[0],
           t_paste[0], t_jpeg[0]);
    jpeg_enc_destroy(enc);
    resize_scratch_free(&sp);
    resize_scratch_free(&sq);
    free(frame), free(crop), free(input), free(pred), free(t_prep), free(t_paste), free(t_jpeg);
    return 0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 200;
    if (reps < 1) reps = 1;
    int rc = bench(1280, 720, (ls_box){540, 210, 722, 392}, reps);
    rc |= bench(1920, 1080, (ls_box){810, 315, 1080, 585}, reps);
    return rc;
}
