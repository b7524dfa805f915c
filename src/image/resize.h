/* resize.h - bicubic resize of 8-bit BGR images, bit-exact with OpenCV 4.6's cv2.resize INTER_CUBIC.
 *
 * The reference pipeline resizes face crops with cv2.resize(..., INTER_CUBIC); the network was
 * trained on exactly those pixels, so we reproduce OpenCV's arithmetic rather than "a" bicubic:
 * the same coordinate mapping, a = -0.75 coefficients quantised to 1/2048, clamped borders, an
 * integer horizontal pass and OpenCV's vertical pass (float blocks of 8 values, fixed point tail).
 *
 * Memory: all tables and row buffers live in a resize_scratch that the caller creates once for the
 * largest destination it will use; resize_bgr() never allocates. Tables are cached in the scratch
 * and rebuilt only when the (source, destination) sizes change. A scratch belongs to one thread.
 * Images are 3 interleaved channels (BGR), rows `stride` bytes apart (stride >= 3 * width).
 * Errors: -1 with LS_EINVAL (bad sizes, strides, or a destination larger than the scratch). */
#ifndef LS_IMAGE_RESIZE_H
#define LS_IMAGE_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Largest side accepted for source or destination: keeps every index and product inside int. */
#define RESIZE_MAX_SIDE 16384

typedef struct resize_scratch {
    int max_dst_w, max_dst_h;       /* capacity chosen at init */
    int sw, sh, dw, dh;             /* sizes the cached tables were built for (0 = none) */
    int *xtap;                      /* [max_dst_w * 4] byte offsets of the 4 source pixels per column */
    int16_t *alpha;                 /* [max_dst_w * 4] horizontal coefficients, scaled by 2048 */
    int *yofs;                      /* [max_dst_h] first-but-one source row per destination row */
    int16_t *beta;                  /* [max_dst_h * 4] vertical coefficients, scaled by 2048 */
    int32_t *rows[4];               /* horizontally resized source rows, 3 * max_dst_w each */
    int row_y[4];                   /* which source row each buffer holds (-1 = none) */
    void *block;                    /* the single allocation behind all of the above */
} resize_scratch;

/* Allocates tables and row buffers for destinations up to max_dst_w x max_dst_h (any source size).
 * Returns 0, or -1 (LS_EINVAL for bad sizes, LS_ENOMEM). */
int resize_scratch_init(resize_scratch *s, int max_dst_w, int max_dst_h, ls_err *err);
void resize_scratch_free(resize_scratch *s);

/* dst (dw x dh) = cv2.resize(src (sw x sh), (dw, dh), interpolation=INTER_CUBIC), 3 channels.
 * src and dst must not overlap. Same size is a plain copy, as in OpenCV. Never allocates. */
int resize_bgr(const uint8_t *src, int sw, int sh, size_t src_stride,
               uint8_t *dst, int dw, int dh, size_t dst_stride,
               resize_scratch *s, ls_err *err);

#endif
