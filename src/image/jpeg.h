/* jpeg.h - per-worker JPEG encoder for output frames (TurboJPEG, BGR input, 4:2:0).
 *
 * jpeg_enc_create sizes one output buffer for the largest frame (tjBufSize) and encodes with
 * TJFLAG_NOREALLOC, so encoding a frame never grows or allocates buffers in our code (libjpeg's
 * own small per-image pools aside). The encoded bytes live in the encoder and stay valid until the
 * next jpeg_encode_bgr or jpeg_enc_destroy. One encoder belongs to one thread at a time.
 * Errors: NULL / -1 with LS_EINVAL (sizes, quality), LS_ENOMEM, or LS_EINTERNAL (TurboJPEG's
 * message). */
#ifndef LS_IMAGE_JPEG_H
#define LS_IMAGE_JPEG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define JPEG_DEFAULT_QUALITY 75
#define JPEG_MAX_SIDE 16384

typedef struct jpeg_enc jpeg_enc;

/* An encoder for frames up to max_w x max_h at quality 1..100, 4:2:0 chroma subsampling. */
jpeg_enc *jpeg_enc_create(int max_w, int max_h, int quality, ls_err *err);
void jpeg_enc_destroy(jpeg_enc *e);

/* Quality 1..100 for the following frames. */
int jpeg_enc_set_quality(jpeg_enc *e, int quality, ls_err *err);

/* Encodes a w x h BGR image (rows `stride` bytes apart, stride >= 3 * w). On success *out points
 * at *out_len bytes of JPEG owned by the encoder. */
int jpeg_encode_bgr(jpeg_enc *e, const uint8_t *bgr, int w, int h, size_t stride,
                    const uint8_t **out, size_t *out_len, ls_err *err);

#endif
