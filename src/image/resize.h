/* resize.h - bicubic resize of 8-bit BGR images, bit-exact with OpenCV 4.6's cv2.resize INTER_CUBIC.
 *
 * The reference pipeline resizes face crops with cv2.resize(..., INTER_CUBIC); the network was
 * trained on exactly those pixels, so we reproduce OpenCV's arithmetic rather than "a" bicubic:
 * the same coordinate mapping, a = -0.75 coefficients quantised to 1/2048, clamped borders, an
 * integer horizontal pass and OpenCV's vertical pass (float blocks of 8 values, fixed point tail).
 *
 * Memory: all tables and row buffers live in a resize_scratch that the caller creates once for the
 * largest images it will use; resize_bgr() never allocates. Tables are cached in the scratch
 * and rebuilt only when the (source, destination) sizes change. A scratch belongs to one thread.
 * Images are 3 interleaved channels (BGR), rows `stride` bytes apart (stride >= 3 * width).
 * Errors: -1 with LS_EINVAL (bad sizes, strides, or an image larger than the scratch). */
#ifndef LS_IMAGE_RESIZE_H
#define LS_IMAGE_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Largest side accepted for source or destination: keeps every index and product inside int. */
#define RESIZE_MAX_SIDE 16384

typedef float resize_v4f __attribute__((vector_size(16))); /* one pixel B,G,R,0 or 4 taps */

typedef struct resize_scratch {
    int max_w, max_h;               /* capacity chosen at init */
    int sw, sh, dw, dh;             /* sizes the cached tables were built for (0 = none) */
    int *xtap;                      /* [max_w * 4] the 4 clamped source columns per dst column */
    resize_v4f *alpha;              /* [max_w * 4] horizontal coefficients (x2048), broadcast */
    int *yofs;                      /* [max_h] first-but-one source row per destination row */
    int16_t *beta;                  /* [max_h * 4] vertical coefficients, scaled by 2048 */
    resize_v4f *wide;               /* [max_w] one source row as float pixels */
    float *rows[4];                 /* horizontally resized source rows, 3 * max_w + 1 each */
    int row_y[4];                   /* which source row each buffer holds (-1 = none) */
    void *block;                    /* the single allocation behind all of the above */
} resize_scratch;

/* Allocates tables and buffers for source and destination widths up to max_w and destination
 * heights up to max_h (source heights up to RESIZE_MAX_SIDE). Returns 0, or -1 (LS_EINVAL for
 * sizes outside 1..RESIZE_MAX_SIDE, LS_ENOMEM). About 100 * max_w + 12 * max_h bytes. */
int resize_scratch_init(resize_scratch *s, int max_w, int max_h, ls_err *err);
void resize_scratch_free(resize_scratch *s);

/* dst (dw x dh) = cv2.resize(src (sw x sh), (dw, dh), interpolation=INTER_CUBIC), 3 channels.
 * src and dst must not overlap. Same size is a plain copy, as in OpenCV. Never allocates.
 * Fails with LS_EINVAL when sw or dw exceeds max_w, dh exceeds max_h, or sizes/strides are bad. */
int resize_bgr(const uint8_t *src, int sw, int sh, size_t src_stride,
               uint8_t *dst, int dw, int dh, size_t dst_stride,
               resize_scratch *s, ls_err *err);

/* A source row on demand: writes row y (0 <= y < sh) as sw pixels {B, G, R, 0} of whole numbers
 * 0..255 in float. Lets a caller whose source is not a plain byte image (paste-back: the network's
 * float planes inside a byte border) feed the resize without building that image first. */
typedef void (*resize_row_fn)(void *ctx, int y, resize_v4f *wide);

/* resize_bgr of the sw x sh image that `row` describes; same results bit for bit, same errors. */
int resize_bgr_rows(resize_row_fn row, void *ctx, int sw, int sh, uint8_t *dst, int dw, int dh,
                    size_t dst_stride, resize_scratch *s, ls_err *err);

#endif
