/* mel.c - normalised log-mel spectrogram rows with FFTW3f and a sparse Slaney filterbank (mel.h).
 *
 * Each row is computed independently from the raw samples (pre-emphasis included), so any range
 * of rows is bit-identical to the whole-signal result. The filterbank is computed in double
 * precision exactly like librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600,
 * htk=False, norm='slaney') and stored as one [first bin, count, weights] run per filter, since
 * only ~740 of its 80x401 weights are nonzero. */
#include "audio/mel.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEL_FMIN 55.0
#define MEL_FMAX 7600.0
#define MEL_PREEMPH 0.97f

struct mel_ctx {
    fftwf_plan plan;
    float *frame;                 /* MEL_N_FFT windowed samples (FFTW input) */
    fftwf_complex *spec;          /* MEL_FFT_BINS bins (FFTW output) */
    float mag[MEL_FFT_BINS];      /* |spec|, only bins [bin_lo, bin_hi) are filled */
    float window[MEL_N_FFT];      /* periodic Hann */
    int first[MEL_BINS], count[MEL_BINS], offset[MEL_BINS];
    int bin_lo, bin_hi;
    int n_weights;
    float *weights;               /* n_weights nonzero filter weights, filter by filter */
};

/* FFTW's planner keeps global state; libfftw3f_threads can wrap it in a lock. A process-wide
 * pthread_once is the one piece of global state here, and it only ever goes from unset to set. */
static pthread_once_t planner_once = PTHREAD_ONCE_INIT;
static void make_planner_thread_safe(void) { fftwf_make_planner_thread_safe(); }

/* Slaney mel scale (librosa's htk=False): linear below 1 kHz, logarithmic above. */
static double hz_to_mel(double f) {
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, logstep = log(6.4) / 27.0;
    if (f >= min_log_hz) return min_log_hz / f_sp + log(f / min_log_hz) / logstep;
    return f / f_sp;
}

static double mel_to_hz(double m) {
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, logstep = log(6.4) / 27.0;
    const double min_log_mel = min_log_hz / f_sp;
    if (m >= min_log_mel) return min_log_hz * exp(logstep * (m - min_log_mel));
    return f_sp * m;
}

/* Fills the dense filterbank W[80][401] (double) as librosa does. */
static void slaney_filterbank(double *w) {
    double pts[MEL_BINS + 2];
    const double mlo = hz_to_mel(MEL_FMIN), mhi = hz_to_mel(MEL_FMAX);
    for (int i = 0; i < MEL_BINS + 2; i++)
        pts[i] = mel_to_hz(mlo + (mhi - mlo) * i / (MEL_BINS + 1));
    for (int i = 0; i < MEL_BINS; i++) {
        const double enorm = 2.0 / (pts[i + 2] - pts[i]);
        for (int k = 0; k < MEL_FFT_BINS; k++) {
            const double f = (double)MEL_SAMPLE_RATE / 2 * k / (MEL_FFT_BINS - 1);
            const double lower = (f - pts[i]) / (pts[i + 1] - pts[i]);
            const double upper = (pts[i + 2] - f) / (pts[i + 2] - pts[i + 1]);
            const double v = fmin(lower, upper);
            w[i * MEL_FFT_BINS + k] = v > 0 ? v * enorm : 0.0;
        }
    }
}

static int build_sparse(mel_ctx *c, ls_err *err) {
    double *w = malloc(sizeof(double) * MEL_BINS * MEL_FFT_BINS);
    if (!w) return ls_fail(err, LS_ENOMEM, "mel: out of memory for the filterbank");
    slaney_filterbank(w);
    int total = 0;
    c->bin_lo = MEL_FFT_BINS;
    c->bin_hi = 0;
    for (int i = 0; i < MEL_BINS; i++) {
        int lo = MEL_FFT_BINS, hi = -1;
        for (int k = 0; k < MEL_FFT_BINS; k++)
            if (w[i * MEL_FFT_BINS + k] != 0.0) {
                if (lo == MEL_FFT_BINS) lo = k;
                hi = k;
            }
        if (hi < 0) lo = 0; /* an empty filter (not for these settings): count 0 */
        c->first[i] = lo;
        c->count[i] = hi - lo + 1;
        c->offset[i] = total;
        total += c->count[i];
        if (c->count[i] > 0) {
            if (lo < c->bin_lo) c->bin_lo = lo;
            if (hi + 1 > c->bin_hi) c->bin_hi = hi + 1;
        }
    }
    if (c->bin_hi < c->bin_lo) c->bin_lo = c->bin_hi = 0;
    c->weights = malloc(sizeof(float) * (size_t)(total ? total : 1));
    if (!c->weights) {
        free(w);
        return ls_fail(err, LS_ENOMEM, "mel: out of memory for the filterbank");
    }
    for (int i = 0; i < MEL_BINS; i++)
        for (int k = 0; k < c->count[i]; k++)
            c->weights[c->offset[i] + k] = (float)w[i * MEL_FFT_BINS + c->first[i] + k];
    c->n_weights = total;
    free(w);
    return 0;
}

mel_ctx *mel_create(ls_err *err) {
    pthread_once(&planner_once, make_planner_thread_safe);
    mel_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        ls_fail(err, LS_ENOMEM, "mel: out of memory");
        return NULL;
    }
    c->frame = fftwf_malloc(sizeof(float) * MEL_N_FFT);
    c->spec = fftwf_malloc(sizeof(fftwf_complex) * MEL_FFT_BINS);
    if (!c->frame || !c->spec) {
        ls_fail(err, LS_ENOMEM, "mel: out of memory for FFT buffers");
        mel_free(c);
        return NULL;
    }
    if (build_sparse(c, err)) {
        mel_free(c);
        return NULL;
    }
    /* FFTW_ESTIMATE: the plan (and so the exact rounding of every row) does not depend on timing
     * measurements, so results are reproducible run to run; an 800-point r2c is fast either way. */
    c->plan = fftwf_plan_dft_r2c_1d(MEL_N_FFT, c->frame, c->spec, FFTW_ESTIMATE);
    if (!c->plan) {
        ls_fail(err, LS_ENOMEM, "mel: FFTW could not create an 800-point r2c plan");
        mel_free(c);
        return NULL;
    }
    for (int m = 0; m < MEL_N_FFT; m++)
        c->window[m] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * m / MEL_N_FFT));
    return c;
}

void mel_free(mel_ctx *c) {
    if (!c) return;
    if (c->plan) fftwf_destroy_plan(c->plan);
    fftwf_free(c->frame);
    fftwf_free(c->spec);
    free(c->weights);
    free(c);
}

size_t mel_frame_count(size_t n_samples) { return 1 + n_samples / MEL_HOP; }

/* One row: window the pre-emphasised samples of frame j, FFT, magnitude, filter, log, normalise. */
static void mel_row(mel_ctx *c, const float *x, size_t n, size_t j, float *out) {
    const long long t0 = (long long)j * MEL_HOP - MEL_N_FFT / 2;
    float *buf = c->frame;
    if (t0 >= 1 && t0 + MEL_N_FFT <= (long long)n) {
        const float *p = x + t0;
        for (int m = 0; m < MEL_N_FFT; m++) buf[m] = (p[m] - MEL_PREEMPH * p[m - 1]) * c->window[m];
    } else {
        for (int m = 0; m < MEL_N_FFT; m++) {
            const long long t = t0 + m;
            float y = 0.0f;
            if (t >= 0 && t < (long long)n) y = x[t] - (t > 0 ? MEL_PREEMPH * x[t - 1] : 0.0f);
            buf[m] = y * c->window[m];
        }
    }
    fftwf_execute(c->plan);
    for (int k = c->bin_lo; k < c->bin_hi; k++) {
        const float re = c->spec[k][0], im = c->spec[k][1];
        c->mag[k] = sqrtf(re * re + im * im);
    }
    for (int i = 0; i < MEL_BINS; i++) {
        const float *w = c->weights + c->offset[i], *m = c->mag + c->first[i];
        float s = 0.0f;
        for (int k = 0; k < c->count[i]; k++) s += w[k] * m[k];
        const float db = 20.0f * log10f(fmaxf(1e-5f, s)) - 20.0f;
        const float v = 8.0f * ((db + 100.0f) / 100.0f) - 4.0f;
        out[i] = v < -4.0f ? -4.0f : v > 4.0f ? 4.0f : v;
    }
}

int mel_rows(mel_ctx *ctx, const float *pcm, size_t n_samples, size_t row_begin, size_t row_end,
             float *out, ls_err *err) {
    if (!ctx || !out || (n_samples && !pcm))
        return ls_fail(err, LS_EINVAL, "mel_rows: NULL argument");
    const size_t rows = mel_frame_count(n_samples);
    if (row_begin > row_end || row_end > rows)
        return ls_fail(err, LS_EINVAL, "mel_rows: rows [%zu, %zu) outside the %zu rows of %zu samples",
                       row_begin, row_end, rows, n_samples);
    for (size_t j = row_begin; j < row_end; j++)
        mel_row(ctx, pcm, n_samples, j, out + (j - row_begin) * MEL_BINS);
    return 0;
}

int mel_compute(mel_ctx *ctx, const float *pcm, size_t n_samples, float *out, size_t out_rows,
                ls_err *err) {
    const size_t rows = mel_frame_count(n_samples);
    if (out_rows < rows)
        return ls_fail(err, LS_EINVAL, "mel_compute: output holds %zu rows, %zu samples need %zu",
                       out_rows, n_samples, rows);
    return mel_rows(ctx, pcm, n_samples, 0, rows, out, err);
}

void mel_filterbank_dense(const mel_ctx *ctx, float *out) {
    memset(out, 0, sizeof(float) * MEL_BINS * MEL_FFT_BINS);
    for (int i = 0; i < MEL_BINS; i++)
        for (int k = 0; k < ctx->count[i]; k++)
            out[i * MEL_FFT_BINS + ctx->first[i] + k] = ctx->weights[ctx->offset[i] + k];
}
