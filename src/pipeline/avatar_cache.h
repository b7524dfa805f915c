/* avatar_cache.h - an avatar's prepared face crops, computed once so that input preparation per
 * frame is a copy and a byte-to-float conversion instead of a cubic resize.
 *
 * The 328 x 328 crop (prepare.h) depends only on the avatar frame and its box, so it is the same
 * every time a frame is shown. The cache keeps it as uint8 BGR: PREP_CROP_BYTES = 322,752 bytes per
 * avatar frame (80.7 MB for a 250-frame avatar, beside the 691 MB of its 1280x720 frames). Keeping
 * the 6 x 320 x 320 float input instead would cost 2.46 MB per frame (614 MB) to save a conversion
 * of about 0.1 ms, so we keep bytes.
 *
 * Memory: pipe_avcache_create allocates everything (load time); the cache is then read-only and may
 * be shared by all workers rendering that avatar. pipe_avcache_prepare never allocates.
 * Errors: LS_EINVAL (a bad box: see prep_check_box), LS_ENOMEM. */
#ifndef LS_PIPELINE_AVATAR_CACHE_H
#define LS_PIPELINE_AVATAR_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "avatar/avatar.h"
#include "common/err.h"

typedef struct pipe_avcache pipe_avcache;

/* Resizes every frame's box of av to its 328 crop (about 0.5 ms per frame, one thread).
 * av must outlive the cache. */
pipe_avcache *pipe_avcache_create(const avatar *av, ls_err *err);
void pipe_avcache_free(pipe_avcache *c); /* NULL is fine */

/* The avatar the cache was made for (render checks it against the request's). */
const avatar *pipe_avcache_avatar(const pipe_avcache *c);

/* Bytes held: the crops plus the struct. */
size_t pipe_avcache_bytes(const pipe_avcache *c);

/* Frame i's crop (PREP_CROP_BYTES, rows 984 bytes); 0 <= i < frame_count, not checked. */
const uint8_t *pipe_avcache_crop(const pipe_avcache *c, int i);

/* What prep_frame(avatar frame i, its box) writes, bit for bit, from the cache: the 6x320x320
 * input, and the crop's 4-pixel border into `crop` (its inside, crop[4:324, 4:324], is left as
 * it was: paste-back reads only the border). 0 <= i < frame_count, not checked. */
void pipe_avcache_prepare(const pipe_avcache *c, int i, uint8_t *crop, float *input);

#endif
