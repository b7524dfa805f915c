/* imgfile.h - JPEG/PNG files <-> packed BGR pixels, for loading avatars and for tools and tests.
 *
 * Decoding is strict: TurboJPEG with TJFLAG_STOPONWARNING (a truncated or corrupt JPEG is an error,
 * not a grey smear) and libspng with checksums verified. The format comes from the file's magic
 * bytes. PNG alpha is dropped and 16-bit/grey/palette PNGs are converted to 8-bit BGR, as
 * cv2.imread(IMREAD_COLOR) would (no gamma or colour management).
 *
 * Memory: these functions allocate (load-time use only, never per frame). Decoded images are one
 * malloc'd block of w * h * 3 bytes (rows packed, stride 3 * w) that the caller frees with free().
 * Errors: NULL / -1 with LS_EIO (open/read/write), LS_EFORMAT (unknown, corrupt or truncated data,
 * dimensions over IMG_MAX_SIDE), LS_EINVAL (bad arguments), LS_ENOMEM. */
#ifndef LS_IMAGE_IMGFILE_H
#define LS_IMAGE_IMGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define IMG_MAX_SIDE 8192                 /* per side; avatars are video frames, at most 4K */
#define IMG_MAX_FILE_BYTES (256u << 20)   /* refuse to read files larger than this */

/* Decodes a JPEG or PNG held in memory. Returns the BGR pixels and sets *w, *h. */
uint8_t *img_decode_bgr(const void *bytes, size_t len, int *w, int *h, ls_err *err);

/* Reads and decodes an image file; messages name the path. */
uint8_t *img_load_bgr(const char *path, int *w, int *h, ls_err *err);

/* Writes a w x h BGR image (rows `stride` bytes apart) as 8-bit RGB PNG / baseline JPEG
 * (quality 1..100, 4:2:0). */
int img_write_png(const char *path, const uint8_t *bgr, int w, int h, size_t stride, ls_err *err);
int img_write_jpeg(const char *path, const uint8_t *bgr, int w, int h, size_t stride, int quality,
                   ls_err *err);

/* Copies a w x h BGR image (rows `stride` bytes apart) to packed RGB24 (rows 3 * w bytes) in dst.
 * Never allocates. For outputs that promise RGB (PNG files, the server's raw and face-patch
 * frames). */
void img_bgr_to_rgb(const uint8_t *bgr, size_t stride, int w, int h, uint8_t *dst);

#endif
