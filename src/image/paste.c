/* paste.c - network output -> crop -> resized back into the frame (see paste.h). */
#include "image/paste.h"

#include <emmintrin.h> /* SSE2: the x86-64 baseline */
#include <string.h>

#include "image/prepare.h"

/* float -> uint8 as numpy's cast truncates, with NaN/negative -> 0 and >= 255 -> 255.
 * `v > 0 ? v : 0` is false for NaN, so NaN lands on 0. */
static inline uint8_t to_u8(float p) {
    float v = p * 255.0f;
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    return (uint8_t)(int)v;
}

void paste_pred_to_crop(const float *pred, uint8_t *crop) {
    const size_t plane = (size_t)PREP_SIZE * PREP_SIZE;
    uint8_t u8[3][PREP_SIZE];
    for (int y = 0; y < PREP_SIZE; y++) {
        /* Plane by plane (contiguous, so the conversion vectorises), then interleave to BGR. */
        for (int c = 0; c < 3; c++) {
            const float *restrict in = pred + c * plane + (size_t)y * PREP_SIZE;
            uint8_t *restrict o = u8[c];
            for (int x = 0; x < PREP_SIZE; x++) o[x] = to_u8(in[x]);
        }
        uint8_t *restrict out = crop + ((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3;
        for (int x = 0; x < PREP_SIZE; x++) {
            out[3 * x + 0] = u8[0][x];
            out[3 * x + 1] = u8[1][x];
            out[3 * x + 2] = u8[2][x];
        }
    }
}

/* Row source for the resize (resize_row_fn): crop row y with its inside taken straight from the
 * network's planes, converted as paste_pred_to_crop does. Same values as resizing the crop after
 * paste_pred_to_crop, without writing and re-reading that byte image (about 0.2 ms per frame). */
typedef struct pred_rows {
    const float *pred;
    const uint8_t *crop;
} pred_rows;

typedef struct pred_u8_rows { /* the same for paste_frame_u8 */
    const uint8_t *pred;      /* 320 x 320 x 3 HWC */
    const uint8_t *crop;
} pred_u8_rows;

static inline void widen_px(const uint8_t *p, resize_v4f *w) {
    *w = (resize_v4f){(float)p[0], (float)p[1], (float)p[2], 0.0f};
}

/* Four values -> uint8(v * 255) as to_u8, kept in float. max_ps returns its second operand (0)
 * when the first is NaN, so NaN lands on 0 as in to_u8. */
static inline __m128 to_u8_ps(__m128 v) {
    const __m128 k255 = _mm_set1_ps(255.0f);
    v = _mm_min_ps(_mm_max_ps(_mm_mul_ps(v, k255), _mm_setzero_ps()), k255);
    return _mm_cvtepi32_ps(_mm_cvttps_epi32(v));
}

/* The crop's border pixels of row y. Returns 1 when that was the whole row (top and bottom
 * border rows); otherwise only the left and right 4 pixels are written and the caller fills
 * wide[PREP_BORDER .. PREP_BORDER + PREP_SIZE) from the prediction. */
static int border_row(const uint8_t *crop, int y, resize_v4f *restrict wide) {
    const uint8_t *c = crop + (size_t)y * PREP_CROP * 3;
    if (y < PREP_BORDER || y >= PREP_CROP - PREP_BORDER) {
        for (int x = 0; x < PREP_CROP; x++) widen_px(c + 3 * x, &wide[x]);
        return 1;
    }
    for (int x = 0; x < PREP_BORDER; x++) {
        widen_px(c + 3 * x, &wide[x]);
        widen_px(c + 3 * (PREP_CROP - 1 - x), &wide[PREP_CROP - 1 - x]);
    }
    return 0;
}

static void pred_row(void *ctx, int y, resize_v4f *restrict wide) {
    const pred_rows *r = ctx;
    if (border_row(r->crop, y, wide)) return;
    const size_t plane = (size_t)PREP_SIZE * PREP_SIZE, off = (size_t)(y - PREP_BORDER) * PREP_SIZE;
    const float *pb = r->pred + off, *pg = pb + plane, *pr = pg + plane;
    resize_v4f *o = wide + PREP_BORDER;
    const __m128 z = _mm_setzero_ps();
    for (int x = 0; x < PREP_SIZE; x += 4, o += 4) { /* 4 pixels: planes -> B,G,R,0 vectors */
        __m128 b = to_u8_ps(_mm_loadu_ps(pb + x)), g = to_u8_ps(_mm_loadu_ps(pg + x)),
               rr = to_u8_ps(_mm_loadu_ps(pr + x));
        __m128 bg_lo = _mm_unpacklo_ps(b, g), r0_lo = _mm_unpacklo_ps(rr, z);
        __m128 bg_hi = _mm_unpackhi_ps(b, g), r0_hi = _mm_unpackhi_ps(rr, z);
        o[0] = (resize_v4f)_mm_movelh_ps(bg_lo, r0_lo);
        o[1] = (resize_v4f)_mm_movehl_ps(r0_lo, bg_lo);
        o[2] = (resize_v4f)_mm_movelh_ps(bg_hi, r0_hi);
        o[3] = (resize_v4f)_mm_movehl_ps(r0_hi, bg_hi);
    }
}

/* Row source for paste_frame_u8: the inside from the uint8 HWC prediction (already to_u8'd). */
static void u8_row(void *ctx, int y, resize_v4f *restrict wide) {
    const pred_u8_rows *r = ctx;
    if (border_row(r->crop, y, wide)) return;
    const uint8_t *p = r->pred + (size_t)(y - PREP_BORDER) * PREP_SIZE * 3;
    resize_v4f *o = wide + PREP_BORDER;
    const __m128i z = _mm_setzero_si128(), keep3 = _mm_set_epi32(0, -1, -1, -1);
    int x = 0;
    /* 4 pixels (12 bytes) per step from one 16-byte load; the last step would read past the row
     * (and, on the last row, past the buffer), so it goes pixel by pixel. */
    for (; x + 4 < PREP_SIZE; x += 4, o += 4) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 3 * x));
        __m128i lo = _mm_unpacklo_epi8(v, z), hi = _mm_unpacklo_epi8(_mm_srli_si128(v, 6), z); /* px 0-1, 2-3 */
        o[0] = (resize_v4f)_mm_cvtepi32_ps(_mm_and_si128(_mm_unpacklo_epi16(lo, z), keep3));
        o[1] = (resize_v4f)_mm_cvtepi32_ps(_mm_and_si128(_mm_unpacklo_epi16(_mm_srli_si128(lo, 6), z), keep3));
        o[2] = (resize_v4f)_mm_cvtepi32_ps(_mm_and_si128(_mm_unpacklo_epi16(hi, z), keep3));
        o[3] = (resize_v4f)_mm_cvtepi32_ps(_mm_and_si128(_mm_unpacklo_epi16(_mm_srli_si128(hi, 6), z), keep3));
    }
    for (; x < PREP_SIZE; x++, o++) widen_px(p + 3 * x, o);
}

/* Checks the arguments and resizes the crop described by `row` into the frame's box. */
static int paste_rows(resize_row_fn row, void *ctx, ls_box box, uint8_t *frame, int fw, int fh,
                      size_t frame_stride, resize_scratch *s, ls_err *err) {
    if (prep_check_box(box, fw, fh, err)) return ls_wrap(err, "paste");
    if (frame_stride < (size_t)fw * 3) return ls_fail(err, LS_EINVAL, "paste: stride below 3 * width");
    uint8_t *dst = frame + (size_t)box.y1 * frame_stride + (size_t)box.x1 * 3;
    if (resize_bgr_rows(row, ctx, PREP_CROP, PREP_CROP, dst, box_width(box), box_height(box), frame_stride, s,
                        err))
        return ls_wrap(err, "paste: crop to box");
    return 0;
}

int paste_frame(const float *pred, const uint8_t *crop, ls_box box, uint8_t *frame, int fw, int fh,
                size_t frame_stride, resize_scratch *s, ls_err *err) {
    if (!pred || !crop || !frame) return ls_fail(err, LS_EINVAL, "paste: NULL buffer");
    pred_rows rows = {pred, crop};
    return paste_rows(pred_row, &rows, box, frame, fw, fh, frame_stride, s, err);
}

void paste_u8_to_crop(const uint8_t *pred_hwc, uint8_t *crop) {
    for (int y = 0; y < PREP_SIZE; y++)
        memcpy(crop + ((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3,
               pred_hwc + (size_t)y * PREP_SIZE * 3, (size_t)PREP_SIZE * 3);
}

int paste_frame_u8(const uint8_t *pred_hwc, const uint8_t *crop, ls_box box, uint8_t *frame, int fw, int fh,
                   size_t frame_stride, resize_scratch *s, ls_err *err) {
    if (!pred_hwc || !crop || !frame) return ls_fail(err, LS_EINVAL, "paste: NULL buffer");
    pred_u8_rows rows = {pred_hwc, crop};
    return paste_rows(u8_row, &rows, box, frame, fw, fh, frame_stride, s, err);
}
