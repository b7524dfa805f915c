/* jpeg_splice_codec.h - internal to jpeg_splice: one libjpeg compressor that never touches the heap
 * after it is created.
 *
 * libjpeg's own memory manager mallocs every module in jpeg_start_compress and frees them in
 * jpeg_abort, i.e. dozens of heap calls per image. This codec swaps in a memory manager over two
 * arenas sized at creation (one for the permanent pool, one for the image pool, reset per image),
 * a destination manager over the caller's buffer that fails instead of growing, and an error manager
 * that longjmps back into jsplice_codec_encode and turns libjpeg's message into an ls_err.
 *
 * The settings are the module's contract (see jpeg_splice.h): baseline, YCbCr 4:2:0 without
 * smoothing, the accurate integer DCT (JDCT_ISLOW), the standard Huffman tables (no optimisation),
 * quality scaled with the IJG formula, restart_interval = restart_mcus MCUs. */
#ifndef LS_JPEG_SPLICE_CODEC_H
#define LS_JPEG_SPLICE_CODEC_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t first */

#include <jpeglib.h>

#include "common/arena.h"
#include "common/err.h"

typedef struct jsplice_codec {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_destination_mgr dest;
    struct jpeg_memory_mgr mem;       /* ours, installed over libjpeg's */
    struct jpeg_memory_mgr *lib_mem;  /* libjpeg's own, put back before jpeg_destroy */
    ls_arena permanent, image;        /* the two pools libjpeg uses for compression */
    jmp_buf escape;
    uint8_t *out;                     /* current destination */
    size_t out_cap;
    int out_overflow;                 /* set when the destination ran out of room */
    int max_width;
    int created;
} jsplice_codec;

/* Sets up the compressor for images up to max_width pixels wide (any height). Allocates. */
int jsplice_codec_init(jsplice_codec *c, int max_width, ls_err *err);
void jsplice_codec_free(jsplice_codec *c);

/* Encodes width x height BGR pixels (rows `stride` bytes apart) into out[0..out_cap), *out_len set.
 * headerless: write only SOI, SOF0, DRI, SOS (no JFIF, no tables) - enough to locate the
 * entropy-coded segments of a sub-image. No heap allocation. Errors: LS_EINVAL (bad arguments),
 * LS_ENOMEM (out_cap too small, or the arenas too small - a bug), LS_EINTERNAL (libjpeg failed). */
int jsplice_codec_encode(jsplice_codec *c, const uint8_t *bgr, int width, int height, int stride,
                         int quality, int restart_mcus, int headerless, uint8_t *out, size_t out_cap,
                         size_t *out_len, ls_err *err);

#endif
