/* bench_jpeg_splice.c - incremental JPEG against full-frame encoders, one core (not a test).
 *
 * Build: make -C build bench_jpeg_splice   Run: build/tests/bench_jpeg_splice [frames, default 200]
 * For 1280x720 (180x180 face box) and 1920x1080 (270x270), each frame pastes new content into a box
 * that jitters by up to 8 px around the centre, then times, interleaved on that same frame (in rotating
 * order) so that a noisy machine hits every method alike: full-frame tjCompress2 (q75 4:2:0, its default fast
 * DCT), full-frame libjpeg with restarts (jsplice_encode_full, restart 4), and jsplice_encode with
 * restart every 4 and 8 MCUs. Prints median/min/max ms per frame, the speed-up of each splice over
 * tjCompress2, and bytes against a full encode with the same settings and no restart markers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "bench_time.h"
#include "image/jpeg_splice.h"
#include "jpeg_splice_util.h"

enum { M_TJ, M_FULL, M_S4, M_S8, NMETHODS };
static const char *names[NMETHODS] = {"full tjCompress2", "full libjpeg, restart 4", "splice, restart 4",
                                      "splice, restart 8"};


static int bench_size(int w, int h, int side, int frames) {
    ls_err e;
    int stride = 3 * w;
    size_t n = (size_t)stride * h, cap = jsplice_max_jpeg_size(w, h, 1), len;
    uint8_t *bg_img = malloc(n), *face = malloc(n), *frame = malloc(n), *out = malloc(cap);
    double *t[NMETHODS];
    double bytes[NMETHODS] = {0};
    for (int m = 0; m < NMETHODS; m++) t[m] = malloc(sizeof(double) * (size_t)frames);
    ju_photo(bg_img, w, h, stride, 11);
    ju_photo(face, w, h, stride, 12);
    memcpy(frame, bg_img, n);
    jsplice_background *bg4 = jsplice_background_create(bg_img, w, h, stride, 75, 4, &e);
    jsplice_background *bg8 = jsplice_background_create(bg_img, w, h, stride, 75, 8, &e);
    jsplice_encoder *enc = jsplice_encoder_create(w, h, &e);
    tjhandle tj = tjInitCompress();
    unsigned char *tjbuf = tjAlloc((int)tjBufSize(w, h, TJSAMP_420));
    if (!bg4 || !bg8 || !enc || !tj || !tjbuf) return fprintf(stderr, "setup: %s\n", e.msg), 1;

    uint32_t s = 5;
    double plain_bytes = 0;
    for (int i = 0; i < frames; i++) {
        int x = w / 2 - side / 2 + (int)(ju_rand(&s) % 17) - 8, y = h / 2 - side / 2 + (int)(ju_rand(&s) % 17) - 8;
        ls_box b = {x, y, x + side, y + side};
        int shift = i % 50; /* new face content each frame */
        /* Each method on the same frame, in an order that rotates per frame, right after the paste
         * (untimed) as in the server, so each finds the box in cache alike. */
        for (int k = 0; k < NMETHODS; k++) {
            int m = (k + i) % NMETHODS, rc;
            for (int r = y; r < y + side; r++)
                memcpy(frame + (size_t)r * stride + x * 3, face + (size_t)(r + shift) * stride + (x + shift) * 3,
                       (size_t)side * 3);
            double t0 = bench_now_ms();
            if (m == M_TJ) {
                unsigned long tjlen = tjBufSize(w, h, TJSAMP_420);
                rc = tjCompress2(tj, frame, w, stride, h, TJPF_BGR, &tjbuf, &tjlen, TJSAMP_420, 75, TJFLAG_NOREALLOC);
                len = tjlen;
            } else if (m == M_FULL) {
                rc = jsplice_encode_full(enc, frame, w, h, stride, 75, 4, out, cap, &len, &e);
            } else {
                rc = jsplice_encode(enc, m == M_S4 ? bg4 : bg8, frame, stride, b, out, cap, &len, &e);
            }
            t[m][i] = bench_now_ms() - t0;
            bytes[m] += (double)len;
            if (rc) return fprintf(stderr, "encode failed: %s %s\n", e.msg, tjGetErrorStr2(tj)), 1;
        }
        unsigned long plen; /* the no-restart baseline (not timed) */
        free(ju_reference_encode(frame, w, h, stride, 75, 0, &plen));
        plain_bytes += (double)plen;
        for (int r = y; r < y + side; r++) /* restore the background */
            memcpy(frame + (size_t)r * stride + x * 3, bg_img + (size_t)r * stride + x * 3, (size_t)side * 3);
    }
    printf("\n%dx%d, %dx%d box, %d frames (ms per frame)\n", w, h, side, side, frames);
    printf("%-26s %8s %8s %8s %9s %10s\n", "method", "median", "min", "max", "speed-up", "bytes");
    qsort(t[M_TJ], (size_t)frames, sizeof(double), bench_cmp);
    double tj_median = t[M_TJ][frames / 2];
    for (int m = 0; m < NMETHODS; m++) {
        if (m) qsort(t[m], (size_t)frames, sizeof(double), bench_cmp);
        double med = t[m][frames / 2];
        printf("%-26s %8.3f %8.3f %8.3f %8.1fx %10.0f\n", names[m], med, t[m][0], t[m][frames - 1],
               tj_median / med, bytes[m] / frames);
    }
    printf("full libjpeg, no restarts: %.0f bytes; restart 4 costs %+.2f%%, restart 8 %+.2f%%\n",
           plain_bytes / frames, 100.0 * (bytes[M_S4] / plain_bytes - 1), 100.0 * (bytes[M_S8] / plain_bytes - 1));
    jsplice_background_free(bg4), jsplice_background_free(bg8), jsplice_encoder_free(enc);
    tjFree(tjbuf), tjDestroy(tj);
    for (int m = 0; m < NMETHODS; m++) free(t[m]);
    free(bg_img), free(face), free(frame), free(out);
    return 0;
}

int main(int argc, char **argv) {
    int frames = argc > 1 ? atoi(argv[1]) : 200;
    if (frames < 1) frames = 1;
    return bench_size(1280, 720, 180, frames) || bench_size(1920, 1080, 270, frames);
}
