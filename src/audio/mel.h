/* mel.h - the normalised 80-bin log-mel spectrogram of 16 kHz mono speech (SyncTalk_2D's front end).
 *
 * Row j of the spectrogram is computed from pre-emphasised samples y[t] = x[t] - 0.97 x[t-1]
 * (x[-1] = 0) for t = 200j-400 .. 200j+399 (zeros outside [0, n_samples)), periodic Hann window,
 * 800-point FFT magnitude, Slaney mel filterbank (55..7600 Hz), 20 log10(max(1e-5, m)) - 20 dB,
 * then clip(8 (S + 100) / 100 - 4, -4, 4). A signal of n samples has 1 + n/200 rows.
 *
 * A mel_ctx owns the FFTW plan, the sparse filterbank and one row of scratch: create it once per
 * worker (creation allocates; it is safe from any thread), then mel_rows() never allocates. One
 * ctx must not be used by two threads at once. Any range of rows equals, bit for bit, the same
 * rows of a whole-signal computation with the same ctx, so a streaming caller can compute the rows
 * of a growing signal as they become complete (row j needs samples up to 200j+399). */
#ifndef LS_MEL_H
#define LS_MEL_H

#include <stddef.h>

#include "common/err.h"

#define MEL_SAMPLE_RATE 16000
#define MEL_N_FFT 800
#define MEL_HOP 200
#define MEL_BINS 80
#define MEL_FFT_BINS (MEL_N_FFT / 2 + 1) /* 401 */

typedef struct mel_ctx mel_ctx;

/* Creates a context (FFTW plan + filterbank). NULL with err filled on failure (LS_ENOMEM). */
mel_ctx *mel_create(ls_err *err);
void mel_free(mel_ctx *ctx);

/* Rows of the whole-signal spectrogram of n_samples samples: 1 + n_samples / 200. */
size_t mel_frame_count(size_t n_samples);

/* Writes rows [row_begin, row_end) of the spectrogram of pcm[0..n_samples) to out
 * ((row_end - row_begin) * MEL_BINS floats, row-major). pcm must be finite (pcm_* checks it).
 * LS_EINVAL when row_begin > row_end or row_end > mel_frame_count(n_samples). No allocation. */
int mel_rows(mel_ctx *ctx, const float *pcm, size_t n_samples, size_t row_begin, size_t row_end,
             float *out, ls_err *err);

/* The whole spectrogram: mel_frame_count(n_samples) rows into out (out_rows = its capacity). */
int mel_compute(mel_ctx *ctx, const float *pcm, size_t n_samples, float *out, size_t out_rows,
                ls_err *err);

/* Copies the filterbank as a dense MEL_BINS x MEL_FFT_BINS matrix (for tests and tools). */
void mel_filterbank_dense(const mel_ctx *ctx, float *out);

#endif
