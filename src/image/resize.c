/* resize.c - OpenCV-exact INTER_CUBIC resize for 8-bit BGR (see resize.h for the contract).
 *
 * Hand-written because no library reproduces OpenCV's 8-bit cubic bit for bit, and the network's
 * inputs must match the reference pipeline's pixels. Mirrors OpenCV 4.6 modules/imgproc/src/
 * resize.cpp (hal::resize tables, HResizeCubic<uchar,int,short>, VResizeCubic with
 * VResizeCubicVec_32s8u on the SSE2 baseline build that Debian ships):
 *   - source x of destination column dx: fx = (float)((dx + 0.5) * scale - 0.5), scale =
 *     1 / (dw / sw) in double; sx = floor(fx); the fraction gives 4 coefficients (a = -0.75) in
 *     float, each stored as saturate_cast<short>(c * 2048) (round half to even);
 *   - taps sx-1 .. sx+2, clamped to the image (the same for rows);
 *   - horizontal pass: integer sums of uchar * short. We form them in float: every product and
 *     partial sum is an integer below 2^24, so float holds them exactly (same values as OpenCV's
 *     int) and one pixel's B,G,R become one 4-lane vector operation;
 *   - vertical pass: OpenCV's SIMD code handles the row in blocks of 8 values with float maths
 *     (beta * 2^-22, nested multiply-adds, round half to even, saturate); the remaining
 *     (width*3) % 8 values take the scalar fixed-point route ((sum + 2^21) >> 22, saturate).
 *     The two routes can differ by one, so we keep both, in the same places. */
#include "image/resize.h"

#include <emmintrin.h> /* SSE2: the x86-64 baseline */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COEF_SCALE 2048 /* INTER_RESIZE_COEF_SCALE */
#define VBLOCK 8        /* values per SIMD block in OpenCV's vertical pass (v_int16 on SSE2) */

typedef resize_v4f v4f;

int resize_scratch_init(resize_scratch *s, int max_w, int max_h, ls_err *err) {
    memset(s, 0, sizeof *s);
    if (max_w < 1 || max_h < 1 || max_w > RESIZE_MAX_SIDE || max_h > RESIZE_MAX_SIDE)
        return ls_fail(err, LS_EINVAL, "resize scratch: max size %dx%d is outside 1..%d", max_w,
                       max_h, RESIZE_MAX_SIDE);
    size_t w = (size_t)max_w, h = (size_t)max_h;
    size_t row = 3 * w + 1; /* +1: a pixel's 4-lane store spills one float past its 3 */
    size_t bytes = w * 4 * sizeof(int) + w * 4 * sizeof(v4f) + h * sizeof(int) +
                   h * 4 * sizeof(int16_t) + w * sizeof(v4f) + 4 * row * sizeof(float) + 9 * 64;
    unsigned char *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) return ls_fail(err, LS_ENOMEM, "resize scratch: cannot allocate %zu bytes", bytes);
    s->block = p;
#define CARVE(field, type, n)                                     \
    do {                                                          \
        s->field = (type *)p;                                     \
        p += ((n) * sizeof(type) + 63) & ~(size_t)63;             \
    } while (0)
    CARVE(xtap, int, w * 4);
    CARVE(alpha, v4f, w * 4);
    CARVE(yofs, int, h);
    CARVE(beta, int16_t, h * 4);
    CARVE(wide, v4f, w);
    for (int k = 0; k < 4; k++) {
        CARVE(rows[k], float, row);
        s->row_y[k] = -1;
    }
#undef CARVE
    s->max_w = max_w;
    s->max_h = max_h;
    return 0;
}

void resize_scratch_free(resize_scratch *s) {
    free(s->block);
    memset(s, 0, sizeof *s);
}

/* OpenCV's interpolateCubic, operation for operation (float, A = -0.75). */
static void cubic_coeffs(float x, float c[4]) {
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

static int16_t coef_fixed(float c) { /* saturate_cast<short>(c * INTER_RESIZE_COEF_SCALE) */
    long v = lrintf(c * COEF_SCALE);
    return (int16_t)(v < INT16_MIN ? INT16_MIN : v > INT16_MAX ? INT16_MAX : v);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Destination index d on an axis of src -> dst samples: returns the first tap (sx - 1) and the 4
 * fixed-point coefficients. */
static int axis_taps(int src, int dst, int d, int16_t coef[4]) {
    double scale = 1. / ((double)dst / src);
    float f = (float)((d + 0.5) * scale - 0.5);
    int si = (int)floorf(f);
    float c[4];
    cubic_coeffs(f - (float)si, c);
    for (int k = 0; k < 4; k++) coef[k] = coef_fixed(c[k]);
    return si - 1;
}

static void build_tables(resize_scratch *s, int sw, int sh, int dw, int dh) {
    for (int dx = 0; dx < dw; dx++) {
        int16_t c[4];
        int x0 = axis_taps(sw, dw, dx, c);
        for (int k = 0; k < 4; k++) {
            float a = c[k];
            s->xtap[4 * dx + k] = clampi(x0 + k, 0, sw - 1);
            s->alpha[4 * dx + k] = (v4f){a, a, a, a};
        }
    }
    for (int dy = 0; dy < dh; dy++) s->yofs[dy] = axis_taps(sh, dh, dy, s->beta + 4 * dy);
    s->sw = sw, s->sh = sh, s->dw = dw, s->dh = dh;
}

/* Source row of a byte image, widened to one B,G,R,0 vector per pixel. */
typedef struct byte_rows {
    const uint8_t *src;
    size_t stride;
    int sw;
} byte_rows;

static void widen_bytes(void *ctx, int y, v4f *restrict wide) {
    const byte_rows *b = ctx;
    const uint8_t *S = b->src + (size_t)y * b->stride;
    for (int x = 0; x < b->sw; x++)
        wide[x] = (v4f){(float)S[3 * x], (float)S[3 * x + 1], (float)S[3 * x + 2], 0.0f};
}

/* One widened source row -> 3*dw exact integer sums (held in float): each destination pixel is 4
 * vector multiply-adds, stored as 4 floats of which the 4th is overwritten by the next pixel (the
 * row has one float to spare). */
static void hpass(const v4f *restrict wide, float *restrict D, const int *restrict tap,
                  const v4f *restrict a, int dw) {
    for (int dx = 0; dx < dw; dx++, tap += 4, a += 4) {
        v4f v = wide[tap[0]] * a[0] + wide[tap[1]] * a[1] + wide[tap[2]] * a[2] +
                wide[tap[3]] * a[3];
        memcpy(D + 3 * dx, &v, sizeof v);
    }
}

/* One value of OpenCV's float route (see vpass). */
static inline uint8_t vround(float s0, float s1, float s2, float s3, float b0, float b1, float b2,
                             float b3) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float t = s3 * b3;
    t = s2 * b2 + t;
    t = s1 * b1 + t;
    t = s0 * b0 + t;
    int v = (int)((t + magic) - magic);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Four horizontally resized rows -> one output row of n = 3*dw bytes. */
static void vpass(const float *restrict r0, const float *restrict r1, const float *restrict r2,
                  const float *restrict r3, const int16_t *beta, uint8_t *restrict dst, int n) {
    /* Float route, as VResizeCubicVec_32s8u: b = beta * 2^-22, t = r0*b0 + (r1*b1 + (r2*b2 +
     * r3*b3)), rounded half to even. Adding and removing 1.5 * 2^23 rounds to the nearest integer
     * in the current (default, to-nearest-even) mode for |t| < 2^22; t stays within -2^10..2^10
     * for 8-bit inputs. */
    const float scale = 1.f / (COEF_SCALE * COEF_SCALE);
    const float b0 = beta[0] * scale, b1 = beta[1] * scale, b2 = beta[2] * scale,
                b3 = beta[3] * scale;
    const int nblk = n & -VBLOCK; /* values covered by whole blocks */
    /* 16 values per step in SSE2 (the x86-64 baseline), as OpenCV's v_float32x4 code: the same
     * multiplies and adds in the same order, cvtps rounds half to even (the default MXCSR mode,
     * like the magic-number trick in vround), packs/packus saturate to 0..255. */
    const __m128 B0 = _mm_set1_ps(b0), B1 = _mm_set1_ps(b1), B2 = _mm_set1_ps(b2), B3 = _mm_set1_ps(b3);
    int x = 0;
    for (const int n16 = n & -16; x < n16; x += 16) {
        __m128i q[4];
        for (int k = 0; k < 4; k++) {
            int i = x + 4 * k;
            __m128 t = _mm_mul_ps(_mm_loadu_ps(r3 + i), B3);
            t = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(r2 + i), B2), t);
            t = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(r1 + i), B1), t);
            t = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(r0 + i), B0), t);
            q[k] = _mm_cvtps_epi32(t);
        }
        __m128i w = _mm_packus_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3]));
        _mm_storeu_si128((__m128i *)(void *)(dst + x), w);
    }
    for (; x < nblk; x++)
        dst[x] = vround(r0[x], r1[x], r2[x], r3[x], b0, b1, b2, b3);
    /* Scalar route (FixedPtCast<int, uchar, 22>); the sum fits in int32 for 8-bit inputs. */
    const int ib0 = beta[0], ib1 = beta[1], ib2 = beta[2], ib3 = beta[3];
    for (; x < n; x++) {
        int v = ((int)r0[x] * ib0 + (int)r1[x] * ib1 + (int)r2[x] * ib2 + (int)r3[x] * ib3 +
                 (1 << 21)) >> 22;
        dst[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* The row buffer holding source row y, computing it into a buffer no current tap needs. */
static const float *source_row(resize_scratch *s, resize_row_fn row, void *ctx, int y, const int need[4]) {
    for (int b = 0; b < 4; b++)
        if (s->row_y[b] == y) return s->rows[b];
    for (int b = 0; b < 4; b++) {
        int y_b = s->row_y[b];
        if (y_b == need[0] || y_b == need[1] || y_b == need[2] || y_b == need[3]) continue;
        row(ctx, y, s->wide);
        hpass(s->wide, s->rows[b], s->xtap, s->alpha, s->dw);
        s->row_y[b] = y;
        return s->rows[b];
    }
    return NULL; /* unreachable: at most 4 distinct rows are needed and there are 4 buffers */
}

static int check_sizes(int sw, int sh, int dw, int dh, const resize_scratch *s, ls_err *err) {
    if (!s || !s->block) return ls_fail(err, LS_EINVAL, "resize: uninitialised scratch");
    if (sw < 1 || sh < 1 || sw > s->max_w || sh > RESIZE_MAX_SIDE)
        return ls_fail(err, LS_EINVAL, "resize: source %dx%d is outside 1x1..%dx%d", sw, sh,
                       s->max_w, RESIZE_MAX_SIDE);
    if (dw < 1 || dh < 1 || dw > s->max_w || dh > s->max_h)
        return ls_fail(err, LS_EINVAL, "resize: destination %dx%d is outside 1x1..%dx%d", dw, dh,
                       s->max_w, s->max_h);
    return 0;
}

static void resize_core(resize_row_fn row, void *ctx, int sw, int sh, uint8_t *dst, int dw, int dh,
                        size_t dst_stride, resize_scratch *s) {
    if (s->sw != sw || s->sh != sh || s->dw != dw || s->dh != dh) build_tables(s, sw, sh, dw, dh);
    for (int k = 0; k < 4; k++) s->row_y[k] = -1; /* rows came from another source image */
    for (int dy = 0; dy < dh; dy++) {
        int need[4];
        for (int k = 0; k < 4; k++) need[k] = clampi(s->yofs[dy] + k, 0, sh - 1);
        const float *r[4];
        for (int k = 0; k < 4; k++) r[k] = source_row(s, row, ctx, need[k], need);
        vpass(r[0], r[1], r[2], r[3], s->beta + 4 * dy, dst + (size_t)dy * dst_stride, 3 * dw);
    }
}

int resize_bgr(const uint8_t *src, int sw, int sh, size_t src_stride,
               uint8_t *dst, int dw, int dh, size_t dst_stride,
               resize_scratch *s, ls_err *err) {
    if (!src || !dst) return ls_fail(err, LS_EINVAL, "resize: NULL image");
    if (check_sizes(sw, sh, dw, dh, s, err)) return -1;
    if (src_stride < (size_t)sw * 3 || dst_stride < (size_t)dw * 3)
        return ls_fail(err, LS_EINVAL, "resize: stride below 3 * width");
    if (sw == dw && sh == dh) { /* OpenCV copies when the size does not change */
        for (int y = 0; y < sh; y++)
            memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * src_stride, (size_t)sw * 3);
        return 0;
    }
    byte_rows b = {src, src_stride, sw};
    resize_core(widen_bytes, &b, sw, sh, dst, dw, dh, dst_stride, s);
    return 0;
}

int resize_bgr_rows(resize_row_fn row, void *ctx, int sw, int sh, uint8_t *dst, int dw, int dh,
                    size_t dst_stride, resize_scratch *s, ls_err *err) {
    if (!row || !dst) return ls_fail(err, LS_EINVAL, "resize: NULL row source or image");
    if (check_sizes(sw, sh, dw, dh, s, err)) return -1;
    if (dst_stride < (size_t)dw * 3) return ls_fail(err, LS_EINVAL, "resize: stride below 3 * width");
    if (sw == dw && sh == dh) { /* a copy, as in OpenCV: the rows' values are the bytes */
        for (int y = 0; y < sh; y++) {
            row(ctx, y, s->wide);
            uint8_t *d = dst + (size_t)y * dst_stride;
            for (int x = 0; x < sw; x++)
                for (int c = 0; c < 3; c++) d[3 * x + c] = (uint8_t)s->wide[x][c];
        }
        return 0;
    }
    resize_core(row, ctx, sw, sh, dst, dw, dh, dst_stride, s);
    return 0;
}
