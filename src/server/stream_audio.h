/* stream_audio.h - one utterance's audio context, computed incrementally as 16 kHz samples arrive.
 *
 * Appending samples computes only what has become final: mel rows whose 800 samples all exist
 * (row j needs samples up to 200j+399), encoder windows whose 16 rows are final (window k starts at
 * floor(80k/25), unclamped, and k is below the frame count the audio so far already guarantees),
 * and encoder outputs (up to PIPE_ENC_BATCH windows per request to the encoder batcher shared by
 * the live sessions of that encoder, stream_encb.h: it blocks the caller until its run is done,
 * and that run may carry other sessions' windows too). sa_finish
 * ends the utterance as the offline pipeline ends a clip: the last rows see the zero padding of
 * the end, the last windows are clamped to the end of the mel, and the frame count is L. Frame i's
 * UNet audio block then equals feat_window() of the offline features for every i < L.
 *
 * Memory: sa_create allocates every buffer once (rings for samples, mel rows, encoder rows, sized
 * for `backlog_s` seconds of not yet released audio); appending never allocates. Old data is
 * dropped as frames are released (sa_release), so a session can run for hours.
 * Not thread-safe: one caller at a time (the session's lock).
 * Errors: LS_EINVAL (bad arguments), LS_EBUSY (more unreleased audio than the backlog holds: the
 * caller should apply back-pressure), LS_EMODEL (encoder). */
#ifndef LS_SERVER_STREAM_AUDIO_H
#define LS_SERVER_STREAM_AUDIO_H

#include <stddef.h>

#include "common/err.h"
#include "server/stream_encb.h"

#define SA_SAMPLES_PER_FRAME 640 /* 16000 / 25 */

typedef struct sa_ctx sa_ctx;

/* encoder: the audio encoder's batcher (borrowed; must outlive the context; the context is
 * attached to it while it lives). backlog_s: 1..600 seconds. */
sa_ctx *sa_create(encb *encoder, int backlog_s, ls_err *err);
void sa_free(sa_ctx *a); /* NULL is fine */

/* Forgets everything: the next samples start a new utterance (sample 0, frame 0). */
void sa_reset(sa_ctx *a);

/* Samples sa_append takes now without LS_EBUSY (the backlog minus what is not yet rendered). */
size_t sa_room(const sa_ctx *a);

/* Appends n finite samples and computes what became final. On LS_EBUSY nothing was appended. */
int sa_append(sa_ctx *a, const float *pcm, size_t n, ls_err *err);

/* Ends the utterance (no more samples until sa_reset). Idempotent. */
int sa_finish(sa_ctx *a, ls_err *err);

int sa_finished(const sa_ctx *a);
size_t sa_samples(const sa_ctx *a);          /* samples appended since the reset */
size_t sa_windows(const sa_ctx *a);          /* encoder windows computed */
size_t sa_total_frames(const sa_ctx *a);     /* L once finished (0 for audio under 3,000 samples) */
uint64_t sa_encoder_requests(const sa_ctx *a); /* encb_run calls made, counted across resets */
uint64_t sa_encoder_windows(const sa_ctx *a);  /* windows they carried, across resets */

/* Frames i whose window i + ahead is computed (ahead 0..15); after sa_finish, L. Frame i's block
 * reads encoder rows i-9 .. i+6, so ahead = 6 gives the reference's exact blocks; a smaller ahead
 * releases frames earlier and, until sa_finish, repeats the last computed row in place of the
 * missing ones (less latency, less accurate mouth shapes at the start of speech). */
size_t sa_frames_ready(const sa_ctx *a, int ahead);

/* Mean of the 16 x 80 mel values of window k (k < sa_windows, k >= the release point - 9): the
 * energy the silence gate reads, on the normalised -4..4 scale (-4 is digital silence). */
float sa_window_energy(const sa_ctx *a, size_t k);

/* Writes frame i's FEAT_CONTEXT x FEAT_ENC_DIM block (feat_window semantics; before sa_finish
 * rows past the last computed one repeat it) into out. Frame i must have at least one computed
 * row and must not be below the release point. */
int sa_frame_block(const sa_ctx *a, size_t i, float *out, ls_err *err);

/* Frames and windows below `frame` will not be asked for again (their data may be dropped). */
void sa_release(sa_ctx *a, size_t frame);

#endif
