/* features.c - frame counts, mel windows and per-frame encoder blocks (features.h). */
#include "audio/features.h"

#include <string.h>

size_t feat_frame_count(size_t mel_frames) {
    if (mel_frames < FEAT_MEL_WINDOW) return 0;
    /* The reference's int((n - 16) / 80. * 25) + 2, in the same double operations and order. */
    return (size_t)((double)(mel_frames - FEAT_MEL_WINDOW) / 80.0 * 25.0) + 2;
}

size_t feat_mel_window_start(size_t k, size_t mel_frames) {
    /* The reference's int(80. * (k / 25.)); then clamp the window inside the spectrogram. */
    size_t start = (size_t)(80.0 * ((double)k / 25.0));
    if (start + FEAT_MEL_WINDOW > mel_frames)
        start = mel_frames >= FEAT_MEL_WINDOW ? mel_frames - FEAT_MEL_WINDOW : 0;
    return start;
}

int feat_encoder_input(const float *mel, size_t mel_frames, size_t k, float *out80x16, ls_err *err) {
    const size_t L = feat_frame_count(mel_frames);
    if (!mel || !out80x16) return ls_fail(err, LS_EINVAL, "feat_encoder_input: NULL argument");
    if (k >= L)
        return ls_fail(err, LS_EINVAL, "feat_encoder_input: frame %zu of %zu (%zu mel rows)", k, L,
                       mel_frames);
    const float *w = mel + feat_mel_window_start(k, mel_frames) * FEAT_MEL_BINS;
    for (size_t b = 0; b < FEAT_MEL_BINS; b++)
        for (size_t t = 0; t < FEAT_MEL_WINDOW; t++)
            out80x16[b * FEAT_MEL_WINDOW + t] = w[t * FEAT_MEL_BINS + b];
    return 0;
}

int feat_window(const float *enc_rows, size_t L, size_t i, float *out, ls_err *err) {
    if (!enc_rows || !out) return ls_fail(err, LS_EINVAL, "feat_window: NULL argument");
    if (i >= L) return ls_fail(err, LS_EINVAL, "feat_window: frame %zu of %zu", i, L);
    for (size_t r = 0; r < FEAT_CONTEXT; r++) {
        float *dst = out + r * FEAT_ENC_DIM;
        const long long j = (long long)i - FEAT_CONTEXT / 2 + (long long)r; /* duplicated row */
        if (j < 0 || j > (long long)L + 1) {
            memset(dst, 0, sizeof(float) * FEAT_ENC_DIM);
            continue;
        }
        long long src = j - 1;
        if (src < 0) src = 0;
        if (src > (long long)L - 1) src = (long long)L - 1;
        memcpy(dst, enc_rows + (size_t)src * FEAT_ENC_DIM, sizeof(float) * FEAT_ENC_DIM);
    }
    return 0;
}
