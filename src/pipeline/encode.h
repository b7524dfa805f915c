/* encode.h - finished frames to JPEG by splicing only the face box into a pre-encoded avatar frame.
 *
 * Avatar frames never change, only the pixels inside the face box do. A pipe_jpeg_set holds, per
 * avatar frame, a jsplice background (jpeg_splice.h): the frame encoded once with restart markers.
 * A pipe_jpeg_enc (one per worker) then encodes a finished frame by re-encoding only the restart
 * segments under its box; the output is byte-identical to a full encode with the same settings
 * (jsplice_encode_full). The set must be the one made for the avatar the frame was rendered from
 * (not checked: frames carry only an index). When splicing does not apply (another quality, a frame of another size,
 * no set) it falls back to jsplice_encode_full of the whole frame at the requested quality.
 *
 * Memory: a set allocates its backgrounds, either all at creation (load time) or each the first
 * time its avatar frame is encoded (the only allocation on that path; later frames allocate
 * nothing). Backgrounds are published atomically, so one set may be shared by all workers; the
 * avatar must outlive the set. About the size of the avatar frame's JPEG per background (~100-200
 * KB at 1280x720 q75): pipe_jpeg_set_bytes counts what is built. An encoder owns its scratch and
 * output buffer (sized for its largest frame) and never allocates after creation. The JPEG bytes
 * stay valid until the encoder's next call. Errors: LS_EINVAL (sizes, quality, frame index),
 * LS_ENOMEM, and jsplice's errors. */
#ifndef LS_PIPELINE_ENCODE_H
#define LS_PIPELINE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "avatar/avatar.h"
#include "common/err.h"
#include "pipeline/render.h"

typedef struct pipe_jpeg_set pipe_jpeg_set;
typedef struct pipe_jpeg_enc pipe_jpeg_enc;

/* Backgrounds for av's frames at quality 1..100 with a restart marker every restart_mcus MCUs
 * (0: JSPLICE_DEFAULT_RESTART_MCUS). build_now: encode every frame now (about 5 ms per 1280x720
 * frame) instead of on first use. */
pipe_jpeg_set *pipe_jpeg_set_create(const avatar *av, int quality, int restart_mcus, int build_now,
                                    ls_err *err);
void pipe_jpeg_set_free(pipe_jpeg_set *s); /* NULL is fine */
int pipe_jpeg_set_quality(const pipe_jpeg_set *s);
size_t pipe_jpeg_set_bytes(const pipe_jpeg_set *s); /* backgrounds built so far, with their indexes */

typedef struct pipe_jpeg_stats {
    uint64_t spliced, full; /* frames encoded each way */
} pipe_jpeg_stats;

pipe_jpeg_enc *pipe_jpeg_enc_create(int max_w, int max_h, ls_err *err);
void pipe_jpeg_enc_free(pipe_jpeg_enc *e); /* NULL is fine */
void pipe_jpeg_enc_stats(const pipe_jpeg_enc *e, pipe_jpeg_stats *out);

/* The rectangle of f that pipe_jpeg_encode(e, set, f, quality) reads: the restart segments under
 * f->box when it will splice, else the whole frame. Use it as render's region (render.h), passing
 * the same set and quality to both. May build f's background (as pipe_jpeg_encode would). */
int pipe_jpeg_region(pipe_jpeg_set *set, const pipe_frame *f, int quality, ls_box *need, ls_err *err);

/* Encodes finished frame f (as render hands it to a sink: f->avatar_frame's pixels outside f->box;
 * only f->valid is read, which must contain pipe_jpeg_region's rectangle)
 * at `quality` (0: the set's). set may be NULL (always a full encode; then quality 0 means
 * JPEG quality 75). On success *out / *out_len give the JPEG, owned by e. */
int pipe_jpeg_encode(pipe_jpeg_enc *e, pipe_jpeg_set *set, const pipe_frame *f, int quality,
                     const uint8_t **out, size_t *out_len, ls_err *err);

#endif
