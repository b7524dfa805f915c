/* clip.c - mel, encoder windows and encoder runs for one clip (see clip.h). */
#include "pipeline/clip.h"

#include <string.h>

#include "audio/features.h"

size_t pipe_clip_frames(size_t n_samples) {
    return feat_frame_count(mel_frame_count(n_samples));
}

size_t pipe_clip_mel_floats(size_t n_samples) {
    return mel_frame_count(n_samples) * MEL_BINS;
}

size_t pipe_clip_feat_floats(size_t n_samples) {
    return pipe_clip_frames(n_samples) * FEAT_ENC_DIM;
}

int pipe_clip_features(pipe_worker *w, const float *pcm, size_t n_samples, float *mel, float *feats,
                       size_t *n_frames, ls_err *err) {
    size_t mel_frames = mel_frame_count(n_samples);
    size_t frames = feat_frame_count(mel_frames);
    if (frames == 0)
        return ls_fail(err, LS_EINVAL, "audio too short: %zu samples at 16 kHz, need at least %d",
                       n_samples, PIPE_CLIP_MIN_SAMPLES);
    if (!w->enc_binding) return ls_fail(err, LS_EINTERNAL, "worker has no audio encoder bound");
    if (mel_compute(w->mel, pcm, n_samples, mel, mel_frames, err) != 0) return -1;
    for (size_t k0 = 0; k0 < frames; k0 += PIPE_ENC_BATCH) {
        size_t batch = frames - k0 < PIPE_ENC_BATCH ? frames - k0 : PIPE_ENC_BATCH;
        for (size_t b = 0; b < batch; b++)
            if (feat_encoder_input(mel, mel_frames, k0 + b, w->enc_mel + b * ORT_ENC_MEL_ELEMS, err))
                return -1;
        if (ort_binding_run(w->enc_binding, (int)batch, err) != 0) return -1;
        memcpy(feats + k0 * FEAT_ENC_DIM, w->enc_feat, batch * FEAT_ENC_DIM * sizeof(float));
    }
    *n_frames = frames;
    return 0;
}
