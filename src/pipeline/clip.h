/* clip.h - a clip's audio turned into the per-video-frame audio features the UNet takes.
 *
 * 16 kHz mono PCM -> mel (mel.h) -> one encoder window per video frame (features.h) -> the encoder
 * in batches of PIPE_ENC_BATCH -> L rows of 512 features. Frame i's UNet audio input is then
 * feat_window(rows, L, i) (rows i-8..i+7 of the edge-duplicated features, zeros past the edges).
 *
 * Memory: the caller provides the mel buffer (pipe_clip_mel_floats) and the feature rows
 * (pipe_clip_feat_floats); nothing allocates. The worker must be bound to an encoder.
 * Errors: LS_EINVAL when the audio is shorter than one mel window (3,000 samples, 0.19 s). */
#ifndef LS_PIPELINE_CLIP_H
#define LS_PIPELINE_CLIP_H

#include <stddef.h>

#include "common/err.h"
#include "pipeline/worker.h"

/* The shortest clip that has a frame: 16 mel rows need 1 + n / 200 >= 16 samples. */
#define PIPE_CLIP_MIN_SAMPLES 3000

/* Video frames (25 fps) the reference produces for n_samples of 16 kHz audio; 0 if too short. */
size_t pipe_clip_frames(size_t n_samples);

/* Floats needed for the mel and for the feature rows of a clip of n_samples. */
size_t pipe_clip_mel_floats(size_t n_samples);
size_t pipe_clip_feat_floats(size_t n_samples);

/* Computes the mel of pcm into mel, then the encoder features of every video frame into feats
 * (*n_frames rows of 512). */
int pipe_clip_features(pipe_worker *w, const float *pcm, size_t n_samples, float *mel, float *feats,
                       size_t *n_frames, ls_err *err);

#endif
