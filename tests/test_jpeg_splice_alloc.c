/* test_jpeg_splice_alloc.c - jsplice_encode and jsplice_encode_full make no heap allocation.
 *
 * malloc, calloc, realloc, free and the aligned allocators are defined here, in the executable, so
 * they take precedence over glibc's for every caller - including libjpeg.so's internal memory
 * manager, which a link-time --wrap=malloc would not see. They count calls and forward to glibc's
 * __libc_* entry points. The control test proves the counter sees libjpeg's own allocations. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "image/jpeg_splice.h"
#include "jpeg_splice_util.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static volatile long heap_calls; /* allocations and frees since the start */

void *malloc(size_t n) { heap_calls++; return __libc_malloc(n); }
void *calloc(size_t n, size_t s) { heap_calls++; return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { heap_calls++; return __libc_realloc(p, n); }
void free(void *p) { if (p) heap_calls++; __libc_free(p); }
void *aligned_alloc(size_t a, size_t n) { heap_calls++; return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { heap_calls++; return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    heap_calls++;
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12; /* ENOMEM */
}

TEST(counter_sees_libjpeg_internal_allocations) {
    static uint8_t img[64 * 48 * 3];
    ju_photo(img, 64, 48, 64 * 3, 1);
    long before = heap_calls;
    unsigned long len;
    uint8_t *j = ju_reference_encode(img, 64, 48, 64 * 3, 75, 4, &len);
    long during = heap_calls - before;
    free(j);
    CHECK(during >= 10, "a plain libjpeg encode must show its allocations (saw %ld)", during);
}

static void run_encodes(int w, int h, int restart, long *calls, int *failures) {
    ls_err e;
    int stride = 3 * w;
    uint8_t *bg_img = malloc((size_t)stride * h), *frame = malloc((size_t)stride * h);
    size_t cap = jsplice_max_jpeg_size(w, h, restart), len;
    uint8_t *out = malloc(cap);
    ju_photo(bg_img, w, h, stride, 3);
    memcpy(frame, bg_img, (size_t)stride * h);
    jsplice_background *bg = jsplice_background_create(bg_img, w, h, stride, 75, restart, &e);
    jsplice_encoder *enc = jsplice_encoder_create(w, h, &e);
    uint32_t s = 99;
    *failures = !bg || !enc;
    if (!*failures) {
        ls_box warm = {0, 0, w, h};
        *failures += jsplice_encode(enc, bg, frame, stride, warm, out, cap, &len, &e) != 0;
        long before = heap_calls;
        for (int i = 0; i < 100; i++) {
            int bw = 1 + (int)(ju_rand(&s) % (unsigned)(w / 4)), bh = 1 + (int)(ju_rand(&s) % (unsigned)(h / 3));
            int x = (int)(ju_rand(&s) % (unsigned)(w - bw)), y = (int)(ju_rand(&s) % (unsigned)(h - bh));
            ls_box b = {x, y, x + bw, y + bh};
            for (int r = b.y1; r < b.y2; r++) memset(frame + (size_t)r * stride + x * 3, (int)(i * 37), (size_t)bw * 3);
            *failures += jsplice_encode(enc, bg, frame, stride, b, out, cap, &len, &e) != 0;
            *failures += jsplice_encode(enc, bg, frame, stride, b, out, 100, &len, &e) == 0; /* error path */
            if (i % 10 == 0) {
                *failures += jsplice_encode_full(enc, frame, w, h, stride, 75, restart, out, cap, &len, &e) != 0;
                *failures += jsplice_encode_full(enc, frame, w, h, stride, 75, restart, out, 100, &len, &e) == 0;
            }
            memcpy(frame + (size_t)y * stride, bg_img + (size_t)y * stride, (size_t)stride * bh);
        }
        *calls = heap_calls - before;
    }
    jsplice_background_free(bg);
    jsplice_encoder_free(enc);
    free(bg_img), free(frame), free(out);
}

TEST(encode_makes_no_heap_allocation_720p) {
    long calls = -1;
    int failures;
    run_encodes(1280, 720, 4, &calls, &failures);
    CHECK(failures == 0, "encodes failed");
    CHECK(calls == 0, "100 splices + 10 full encodes + 110 failed ones made %ld heap calls", calls);
}

TEST(encode_makes_no_heap_allocation_1080p) {
    long calls = -1;
    int failures;
    run_encodes(1920, 1080, 8, &calls, &failures);
    CHECK(failures == 0, "encodes failed");
    CHECK(calls == 0, "100 splices + 10 full encodes + 110 failed ones made %ld heap calls", calls);
}

int main(void) {
    RUN(counter_sees_libjpeg_internal_allocations);
    RUN(encode_makes_no_heap_allocation_720p);
    RUN(encode_makes_no_heap_allocation_1080p);
    return check_summary();
}
