/* avatar_io.h - file and image helpers shared by the avatar loader and builder (module-internal).
 *
 * avatar_read_file reads a whole file into a malloc'd buffer (plus a NUL, not counted in *len),
 * capped at `max` bytes. The image decoder owns one TurboJPEG handle and a reusable file buffer;
 * it decodes JPEG (TurboJPEG, accurate DCT and fancy upsampling: the same pixels cv2.imread gives
 * with the libjpeg-turbo it links) or PNG (libspng) into caller memory as packed BGR24, and fails
 * when the image is not exactly the expected size or is damaged in any way, warnings included. */
#ifndef LS_AVATAR_IO_H
#define LS_AVATAR_IO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

char *avatar_read_file(const char *path, size_t max, size_t *len, ls_err *err);

typedef struct avatar_decoder {
    void *tj;      /* tjhandle */
    uint8_t *file; /* the last file read, grown as needed */
    size_t cap;
} avatar_decoder;

int avatar_decoder_init(avatar_decoder *d, ls_err *err);
void avatar_decoder_free(avatar_decoder *d);

/* Reads the image's size without decoding pixels. */
int avatar_image_size(avatar_decoder *d, const char *path, int *width, int *height, ls_err *err);

/* Decodes `path` into dst (width*height*3 bytes); the image must be width x height. */
int avatar_decode_image(avatar_decoder *d, const char *path, uint8_t *dst, int width, int height,
                        ls_err *err);

#endif
