/* jpeg_splice.h - incremental JPEG for avatar frames that change only inside a face box.
 *
 * At load, jsplice_background_create encodes an avatar frame once with restart markers every
 * `restart_mcus` MCUs and indexes its entropy-coded segments. Per output frame, jsplice_encode
 * re-encodes only the smallest rectangle that covers the box and is made of whole restart segments
 * (16-px MCUs at 4:2:0, segment-aligned horizontally, reaching the image edge where the box does),
 * renumbers its RSTn markers to their global positions and splices it between the cached segments.
 * The result is a standard baseline JPEG byte-identical to jsplice_encode_full of the composited
 * frame with the same quality and restart interval.
 *
 * Encoding settings, the same for every function here so that spliced and full encodes agree:
 * baseline, YCbCr 4:2:0 without smoothing, accurate integer DCT (JDCT_ISLOW: the libjpeg default;
 * note tjCompress2 uses the fast DCT below quality 96, so its bytes differ), standard Huffman tables
 * (never optimised: the header carries the background's tables), IJG quality scaling, JFIF header,
 * DRI = restart_mcus.
 *
 * Memory: a background owns its bytes (allocated at creation). An encoder (one per worker thread,
 * created once for the largest frame) owns all scratch, including libjpeg's working memory, so
 * jsplice_encode and jsplice_encode_full never allocate. Errors are values (ls_err); nothing prints. */
#ifndef LS_JPEG_SPLICE_H
#define LS_JPEG_SPLICE_H

#include <stddef.h>
#include <stdint.h>

#include "common/box.h"
#include "common/err.h"

#define JSPLICE_DEFAULT_RESTART_MCUS 4

typedef struct jsplice_background jsplice_background;
typedef struct jsplice_encoder jsplice_encoder;

/* Worst-case size of one JPEG from this module (header, 3 bytes per padded pixel as tjBufSize,
 * restart markers). Size `out` with it to never see LS_ENOMEM. 0 for invalid dimensions. */
size_t jsplice_max_jpeg_size(int width, int height, int restart_mcus);

/* Encodes the BGR background (rows `stride` bytes apart) once and indexes its segments.
 * quality 1..100, restart_mcus 1..65535 (JSPLICE_DEFAULT_RESTART_MCUS is a good choice: with a
 * moving box a smaller interval re-encodes fewer pixels, a larger one costs fewer marker bytes).
 * Allocates (load time). Returns NULL with *err filled (LS_EINVAL bad arguments, LS_ENOMEM). */
jsplice_background *jsplice_background_create(const uint8_t *bgr, int width, int height, int stride,
                                              int quality, int restart_mcus, ls_err *err);
void jsplice_background_free(jsplice_background *bg);

/* The background's own JPEG (owned by bg): the output for a frame with nothing pasted. */
const uint8_t *jsplice_background_jpeg(const jsplice_background *bg, size_t *len);
int jsplice_background_width(const jsplice_background *bg);
int jsplice_background_height(const jsplice_background *bg);
int jsplice_background_quality(const jsplice_background *bg);
int jsplice_background_restart(const jsplice_background *bg);

/* Per-worker scratch for frames up to max_width x max_height. Allocates (start-up). */
jsplice_encoder *jsplice_encoder_create(int max_width, int max_height, ls_err *err);
void jsplice_encoder_free(jsplice_encoder *enc);

/* 1 when jsplice_encode applies to a frame of width x height at `quality` changed only inside
 * `box` (same size and quality as bg, box inside the frame); 0 means: use jsplice_encode_full. */
int jsplice_can_splice(const jsplice_background *bg, int width, int height, int quality, ls_box box);

/* The rectangle jsplice_encode re-encodes for `box` (pixels, half-open like ls_box), always
 * containing the box. Returns 0, or -1 (LS_EINVAL) when the box is not inside the frame. */
int jsplice_region(const jsplice_background *bg, ls_box box, ls_box *region, ls_err *err);

/* Encodes `frame_bgr` (bg's size, rows `stride` bytes apart), which must equal bg's image outside
 * `box` - this is not checked; pixels outside the re-encoded region come from bg. Writes the JPEG to
 * out[0..out_cap) and its length to *out_len. No allocation. Errors: LS_EINVAL (box not inside the
 * frame, frame larger than the encoder), LS_ENOMEM (out_cap too small; out is then unspecified). */
int jsplice_encode(jsplice_encoder *enc, const jsplice_background *bg, const uint8_t *frame_bgr,
                   int stride, ls_box box, uint8_t *out, size_t out_cap, size_t *out_len, ls_err *err);

/* The fallback: a full encode of any frame up to the encoder's size with the module's settings.
 * Same contract as jsplice_encode; bytes equal jsplice_encode's for the same frame and settings. */
int jsplice_encode_full(jsplice_encoder *enc, const uint8_t *bgr, int width, int height, int stride,
                        int quality, int restart_mcus, uint8_t *out, size_t out_cap, size_t *out_len,
                        ls_err *err);

#endif
