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
 *   - horizontal pass: exact int sums of uchar * short;
 *   - vertical pass: OpenCV's SIMD code handles the row in blocks of 8 values with float maths
 *     (beta * 2^-22, nested multiply-adds, round half to even, saturate); the remaining
 *     (width*3) % 8 values take the scalar fixed-point route ((sum + 2^21) >> 22, saturate).
 *     The two routes can differ by one, so we keep both, in the same places. */
#include "image/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COEF_SCALE 2048 /* INTER_RESIZE_COEF_SCALE */
#define VBLOCK 8        /* values per SIMD block in OpenCV's vertical pass (v_int16 on SSE2) */

int resize_scratch_init(resize_scratch *s, int max_dst_w, int max_dst_h, ls_err *err) {
    memset(s, 0, sizeof *s);
    if (max_dst_w < 1 || max_dst_h < 1 || max_dst_w > RESIZE_MAX_SIDE || max_dst_h > RESIZE_MAX_SIDE)
        return ls_fail(err, LS_EINVAL, "resize scratch: max destination %dx%d is outside 1..%d",
                       max_dst_w, max_dst_h, RESIZE_MAX_SIDE);
    size_t w = (size_t)max_dst_w, h = (size_t)max_dst_h;
    size_t row = (3 * w + 15) & ~(size_t)15; /* ints per row buffer, 64-byte multiple */
    size_t bytes = w * 4 * sizeof(int) + w * 4 * sizeof(int16_t) + h * sizeof(int) +
                   h * 4 * sizeof(int16_t) + 4 * row * sizeof(int32_t) + 6 * 64;
    unsigned char *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) return ls_fail(err, LS_ENOMEM, "resize scratch: cannot allocate %zu bytes", bytes);
    s->block = p;
#define CARVE(field, type, n)                                     \
    do {                                                          \
        s->field = (type *)p;                                     \
        p += ((n) * sizeof(type) + 63) & ~(size_t)63;             \
    } while (0)
    CARVE(xtap, int, w * 4);
    CARVE(alpha, int16_t, w * 4);
    CARVE(yofs, int, h);
    CARVE(beta, int16_t, h * 4);
    for (int k = 0; k < 4; k++) {
        CARVE(rows[k], int32_t, row);
        s->row_y[k] = -1;
    }
#undef CARVE
    s->max_dst_w = max_dst_w;
    s->max_dst_h = max_dst_h;
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

/* Source position and coefficients of each destination index along one axis. */
static void axis_table(int src, int dst, int *first, int16_t *coef) {
    double scale = 1. / ((double)dst / src);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int si = (int)floorf(f);
        float c[4];
        cubic_coeffs(f - (float)si, c);
        first[d] = si - 1;
        for (int k = 0; k < 4; k++) coef[4 * d + k] = coef_fixed(c[k]);
    }
}

static void build_tables(resize_scratch *s, int sw, int sh, int dw, int dh) {
    axis_table(sw, dw, s->xtap, s->alpha);
    for (int dx = dw - 1; dx >= 0; dx--) { /* expand first tap into 4 clamped byte offsets */
        int x0 = s->xtap[dx];
        for (int k = 3; k >= 0; k--) s->xtap[4 * dx + k] = 3 * clampi(x0 + k, 0, sw - 1);
    }
    axis_table(sh, dh, s->yofs, s->beta);
    s->sw = sw, s->sh = sh, s->dw = dw, s->dh = dh;
    for (int k = 0; k < 4; k++) s->row_y[k] = -1;
}

/* One source row -> 3*dw ints: exact integer 4-tap sums per channel. */
static void hpass(const uint8_t *restrict S, int32_t *restrict D, const int *restrict tap,
                  const int16_t *restrict a, int dw) {
    for (int dx = 0; dx < dw; dx++, tap += 4, a += 4, D += 3) {
        const uint8_t *p0 = S + tap[0], *p1 = S + tap[1], *p2 = S + tap[2], *p3 = S + tap[3];
        int a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
        D[0] = p0[0] * a0 + p1[0] * a1 + p2[0] * a2 + p3[0] * a3;
        D[1] = p0[1] * a0 + p1[1] * a1 + p2[1] * a2 + p3[1] * a3;
        D[2] = p0[2] * a0 + p1[2] * a1 + p2[2] * a2 + p3[2] * a3;
    }
}

/* Four horizontally resized rows -> one output row of n = 3*dw bytes. */
static void vpass(const int32_t *restrict r0, const int32_t *restrict r1,
                  const int32_t *restrict r2, const int32_t *restrict r3,
                  const int16_t *beta, uint8_t *restrict dst, int n) {
    /* Float route, as VResizeCubicVec_32s8u: b = beta * 2^-22, t = r0*b0 + (r1*b1 + (r2*b2 +
     * r3*b3)), rounded half to even. Adding and removing 1.5 * 2^23 rounds to the nearest integer
     * in the current (default, to-nearest-even) mode for |t| < 2^22; t stays within -2^10..2^10
     * for 8-bit inputs. Plain C so that the 8-wide block vectorises. */
    const float scale = 1.f / (COEF_SCALE * COEF_SCALE);
    const float b0 = beta[0] * scale, b1 = beta[1] * scale, b2 = beta[2] * scale,
                b3 = beta[3] * scale;
    const float magic = 12582912.0f;
    int x = 0;
    for (; x + VBLOCK <= n; x += VBLOCK) {
        for (int j = 0; j < VBLOCK; j++) {
            float t = (float)r3[x + j] * b3;
            t = (float)r2[x + j] * b2 + t;
            t = (float)r1[x + j] * b1 + t;
            t = (float)r0[x + j] * b0 + t;
            int v = (int)((t + magic) - magic);
            dst[x + j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    /* Scalar route (FixedPtCast<int, uchar, 22>); the sum fits in int32 for 8-bit inputs. */
    const int ib0 = beta[0], ib1 = beta[1], ib2 = beta[2], ib3 = beta[3];
    for (; x < n; x++) {
        int v = (r0[x] * ib0 + r1[x] * ib1 + r2[x] * ib2 + r3[x] * ib3 + (1 << 21)) >> 22;
        dst[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* The row buffer holding source row y, computing it into a buffer no current tap needs. */
static const int32_t *source_row(resize_scratch *s, const uint8_t *src, size_t stride, int y,
                                 const int need[4]) {
    for (int b = 0; b < 4; b++)
        if (s->row_y[b] == y) return s->rows[b];
    for (int b = 0; b < 4; b++) {
        int y_b = s->row_y[b];
        if (y_b == need[0] || y_b == need[1] || y_b == need[2] || y_b == need[3]) continue;
        hpass(src + (size_t)y * stride, s->rows[b], s->xtap, s->alpha, s->dw);
        s->row_y[b] = y;
        return s->rows[b];
    }
    return NULL; /* unreachable: at most 4 distinct rows are needed and there are 4 buffers */
}

int resize_bgr(const uint8_t *src, int sw, int sh, size_t src_stride,
               uint8_t *dst, int dw, int dh, size_t dst_stride,
               resize_scratch *s, ls_err *err) {
    if (!src || !dst || !s || !s->block)
        return ls_fail(err, LS_EINVAL, "resize: NULL image or uninitialised scratch");
    if (sw < 1 || sh < 1 || sw > RESIZE_MAX_SIDE || sh > RESIZE_MAX_SIDE)
        return ls_fail(err, LS_EINVAL, "resize: source %dx%d is outside 1..%d", sw, sh,
                       RESIZE_MAX_SIDE);
    if (dw < 1 || dh < 1 || dw > s->max_dst_w || dh > s->max_dst_h)
        return ls_fail(err, LS_EINVAL, "resize: destination %dx%d is outside 1x1..%dx%d", dw, dh,
                       s->max_dst_w, s->max_dst_h);
    if (src_stride < (size_t)sw * 3 || dst_stride < (size_t)dw * 3)
        return ls_fail(err, LS_EINVAL, "resize: stride below 3 * width");

    if (sw == dw && sh == dh) { /* OpenCV copies when the size does not change */
        for (int y = 0; y < sh; y++)
            memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * src_stride, (size_t)sw * 3);
        return 0;
    }
    if (s->sw != sw || s->sh != sh || s->dw != dw || s->dh != dh) build_tables(s, sw, sh, dw, dh);
    for (int k = 0; k < 4; k++) s->row_y[k] = -1; /* rows came from another source image */

    for (int dy = 0; dy < dh; dy++) {
        int need[4];
        for (int k = 0; k < 4; k++) need[k] = clampi(s->yofs[dy] + k, 0, sh - 1);
        const int32_t *r[4];
        for (int k = 0; k < 4; k++) r[k] = source_row(s, src, src_stride, need[k], need);
        vpass(r[0], r[1], r[2], r[3], s->beta + 4 * dy, dst + (size_t)dy * dst_stride, 3 * dw);
    }
    return 0;
}
