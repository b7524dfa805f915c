/* stream_audio.c - incremental mel, encoder windows and encoder rows of one utterance
 * (stream_audio.h).
 *
 * Storage is three linear buffers, each holding a sliding range [base, base + len) of absolute
 * indices (samples, mel rows, encoder rows); old entries are dropped by moving the live range to
 * the front when it no longer fits (amortised: each entry moves at most a few times).
 * mel rows are computed with mel_rows() over the retained samples as a signal of its own: the
 * retained samples start at a multiple of 200 and at least three rows before the next row to
 * compute, so those rows see exactly the samples (pre-emphasis neighbour included) and the end
 * padding that the whole-signal computation sees, bit for bit. */
#include "server/stream_audio.h"

#include <stdlib.h>
#include <string.h>

#include "audio/features.h"
#include "audio/mel.h"
#include "pipeline/worker.h"

struct sa_ctx {
    mel_ctx *mel;
    encb *encoder;           /* the shared batcher (borrowed; set once attached to it) */
    float *enc_in;           /* [PIPE_ENC_BATCH][80][16]: the windows of one request */
    float *pcm;              /* samples [pcm_base, pcm_base + pcm_len) */
    size_t pcm_cap, pcm_base, pcm_len;
    float *mel_rows;         /* rows [mel_base, mel_base + mel_len), all final */
    size_t mel_cap, mel_base, mel_len;
    float *enc;              /* encoder rows [enc_base, enc_base + enc_len) */
    float *energy;           /* their windows' mean mel value */
    size_t enc_cap, enc_base, enc_len;
    size_t release;          /* first frame still wanted */
    uint64_t requests, windows_sent; /* encb_run calls and their windows, never reset */
    size_t backlog;          /* unreleased samples allowed */
    int finished;
    size_t L;
};

sa_ctx *sa_create(encb *encoder, int backlog_s, ls_err *err) {
    if (!encoder || backlog_s < 1 || backlog_s > 600) {
        ls_fail(err, LS_EINVAL, "stream audio: need an encoder and a backlog of 1..600 s (got %d)",
                backlog_s);
        return NULL;
    }
    sa_ctx *a = calloc(1, sizeof *a);
    if (!a) { ls_fail(err, LS_ENOMEM, "stream audio: out of memory"); return NULL; }
    a->backlog = (size_t)backlog_s * MEL_SAMPLE_RATE;
    /* Sizes from the release rule: unreleased audio spans at most `backlog` samples, plus the
     * few rows/windows of context before the release point (see sa_release). */
    a->pcm_cap = a->backlog + 4 * MEL_N_FFT;
    a->mel_cap = a->backlog / MEL_HOP + 64;
    a->enc_cap = a->backlog / SA_SAMPLES_PER_FRAME + 64;
    a->pcm = malloc(a->pcm_cap * sizeof(float));
    a->mel_rows = malloc(a->mel_cap * MEL_BINS * sizeof(float));
    a->enc = malloc(a->enc_cap * FEAT_ENC_DIM * sizeof(float));
    a->energy = malloc(a->enc_cap * sizeof(float));
    a->enc_in = malloc((size_t)PIPE_ENC_BATCH * ORT_ENC_MEL_ELEMS * sizeof(float));
    if (!a->pcm || !a->mel_rows || !a->enc || !a->energy || !a->enc_in) {
        ls_fail(err, LS_ENOMEM, "stream audio: out of memory for a %d s backlog", backlog_s);
        goto fail;
    }
    if (!(a->mel = mel_create(err))) goto fail;
    encb_attach(encoder);
    a->encoder = encoder;
    return a;
fail:
    sa_free(a);
    return NULL;
}

void sa_free(sa_ctx *a) {
    if (!a) return;
    if (a->encoder) encb_detach(a->encoder);
    mel_free(a->mel);
    free(a->pcm);
    free(a->mel_rows);
    free(a->enc);
    free(a->energy);
    free(a->enc_in);
    free(a);
}

void sa_reset(sa_ctx *a) {
    a->pcm_base = a->pcm_len = 0;
    a->mel_base = a->mel_len = 0;
    a->enc_base = a->enc_len = 0;
    a->release = 0;
    a->finished = 0;
    a->L = 0;
}

int sa_finished(const sa_ctx *a) { return a->finished; }
size_t sa_samples(const sa_ctx *a) { return a->pcm_base + a->pcm_len; }
size_t sa_windows(const sa_ctx *a) { return a->enc_base + a->enc_len; }
size_t sa_total_frames(const sa_ctx *a) { return a->finished ? a->L : 0; }
uint64_t sa_encoder_requests(const sa_ctx *a) { return a->requests; }
uint64_t sa_encoder_windows(const sa_ctx *a) { return a->windows_sent; }

/* Drops entries below new_base (of `width` floats each) by moving the rest to the front. */
static void slide(float *buf, size_t width, size_t *base, size_t *len, size_t new_base) {
    if (new_base <= *base) return;
    size_t drop = new_base - *base;
    if (drop > *len) drop = *len;
    memmove(buf, buf + drop * width, (*len - drop) * width * sizeof(float));
    *base += drop;
    *len -= drop;
}

static size_t unclamped_start(size_t k) { return feat_mel_window_start(k, SIZE_MAX); }

/* Computes mel rows up to (not including) row_end, over the retained samples. */
static int compute_rows(sa_ctx *a, size_t row_end, ls_err *err) {
    size_t mel_n = a->mel_base + a->mel_len;
    size_t enc_n = sa_windows(a);
    /* Keep the rows the next window needs, and always the last 16 (the clamped end windows). */
    size_t keep = unclamped_start(enc_n);
    if (mel_n >= FEAT_MEL_WINDOW && mel_n - FEAT_MEL_WINDOW < keep) keep = mel_n - FEAT_MEL_WINDOW;
    if (mel_n < FEAT_MEL_WINDOW) keep = 0;
    slide(a->mel_rows, MEL_BINS, &a->mel_base, &a->mel_len, keep);
    size_t r0 = a->pcm_base / MEL_HOP, total = sa_samples(a);
    while (mel_n < row_end) {
        size_t space = a->mel_cap - a->mel_len, end = row_end;
        if (space == 0) return ls_fail(err, LS_EBUSY, "stream audio: mel backlog full");
        if (end - mel_n > space) end = mel_n + space;
        if (mel_rows(a->mel, a->pcm, total - a->pcm_base, mel_n - r0, end - r0,
                     a->mel_rows + a->mel_len * MEL_BINS, err) != 0)
            return -1;
        a->mel_len += end - mel_n;
        mel_n = end;
    }
    return 0;
}

/* Computes encoder windows up to `limit`; before the end only windows whose unclamped rows are
 * all final, at the end clamped to the last 16 of mel_frames rows. */
static int compute_windows(sa_ctx *a, size_t limit, int at_end, size_t mel_frames, ls_err *err) {
    size_t keep = a->release > FEAT_CONTEXT / 2 + 1 ? a->release - (FEAT_CONTEXT / 2 + 1) : 0;
    slide(a->enc, FEAT_ENC_DIM, &a->enc_base, &a->enc_len, keep);
    size_t mel_n = a->mel_base + a->mel_len;
    for (;;) {
        size_t k0 = sa_windows(a);
        float energy[PIPE_ENC_BATCH];
        int batch = 0;
        while (batch < PIPE_ENC_BATCH && k0 + (size_t)batch < limit &&
               a->enc_len + (size_t)batch < a->enc_cap) {
            size_t k = k0 + (size_t)batch;
            size_t start = at_end ? feat_mel_window_start(k, mel_frames) : unclamped_start(k);
            if (start + FEAT_MEL_WINDOW > mel_n) break;
            if (start < a->mel_base) return ls_fail(err, LS_EINTERNAL, "stream audio: mel row %zu dropped", start);
            const float *w = a->mel_rows + (start - a->mel_base) * MEL_BINS;
            float *out = a->enc_in + (size_t)batch * ORT_ENC_MEL_ELEMS;
            double sum = 0;
            for (size_t b = 0; b < FEAT_MEL_BINS; b++)
                for (size_t t = 0; t < FEAT_MEL_WINDOW; t++) {
                    out[b * FEAT_MEL_WINDOW + t] = w[t * FEAT_MEL_BINS + b];
                    sum += w[t * FEAT_MEL_BINS + b];
                }
            energy[batch] = (float)(sum / (FEAT_MEL_BINS * FEAT_MEL_WINDOW));
            batch++;
        }
        if (batch == 0) return 0;
        a->requests++;
        a->windows_sent += (uint64_t)batch;
        if (encb_run(a->encoder, a->enc_in, batch, a->enc + a->enc_len * FEAT_ENC_DIM, err) != 0) return -1;
        memcpy(a->energy + a->enc_len, energy, (size_t)batch * sizeof(float));
        a->enc_len += (size_t)batch;
    }
}

static int advance(sa_ctx *a, ls_err *err) {
    size_t total = sa_samples(a);
    /* Row j is final once sample 200j + 399 exists. */
    size_t final_rows = total >= MEL_N_FFT / 2 ? (total - MEL_N_FFT / 2) / MEL_HOP + 1 : 0;
    if (compute_rows(a, final_rows, err) != 0) return -1;
    /* Frames the audio so far already guarantees: the final count can only be larger. */
    size_t guaranteed = feat_frame_count(mel_frame_count(total));
    return compute_windows(a, guaranteed, 0, 0, err);
}

size_t sa_room(const sa_ctx *a) {
    size_t total = sa_samples(a), released = a->release * SA_SAMPLES_PER_FRAME;
    size_t unreleased = total > released ? total - released : 0;
    return a->finished || unreleased >= a->backlog ? 0 : a->backlog - unreleased;
}

int sa_append(sa_ctx *a, const float *pcm, size_t n, ls_err *err) {
    if (a->finished) return ls_fail(err, LS_EINVAL, "stream audio: utterance already finished");
    if (n && !pcm) return ls_fail(err, LS_EINVAL, "stream audio: NULL samples");
    size_t total = sa_samples(a), released = a->release * SA_SAMPLES_PER_FRAME;
    size_t unreleased = total + n > released ? total + n - released : 0;
    if (unreleased > a->backlog)
        return ls_fail(err, LS_EBUSY, "stream audio: %zu unrendered samples exceed the %zu s backlog",
                       unreleased, a->backlog / MEL_SAMPLE_RATE);
    while (n > 0) {
        /* Keep samples from 3 rows before the next row to compute (a multiple of 200). */
        size_t mel_n = a->mel_base + a->mel_len;
        size_t keep = mel_n >= 3 ? (mel_n - 3) * MEL_HOP : 0;
        slide(a->pcm, 1, &a->pcm_base, &a->pcm_len, keep);
        size_t take = a->pcm_cap - a->pcm_len;
        if (take == 0) return ls_fail(err, LS_EINTERNAL, "stream audio: sample buffer full");
        if (take > n) take = n;
        memcpy(a->pcm + a->pcm_len, pcm, take * sizeof(float));
        a->pcm_len += take;
        pcm += take;
        n -= take;
        if (advance(a, err) != 0) return -1;
    }
    return 0;
}

int sa_finish(sa_ctx *a, ls_err *err) {
    if (a->finished) return 0;
    size_t M = mel_frame_count(sa_samples(a));
    if (compute_rows(a, M, err) != 0) return -1;
    size_t L = feat_frame_count(M);
    if (compute_windows(a, L, 1, M, err) != 0) return -1;
    if (sa_windows(a) != L)
        return ls_fail(err, LS_EINTERNAL, "stream audio: %zu windows at the end, expected %zu",
                       sa_windows(a), L);
    a->L = L;
    a->finished = 1;
    return 0;
}

size_t sa_frames_ready(const sa_ctx *a, int ahead) {
    if (a->finished) return a->L;
    size_t n = sa_windows(a);
    return n > (size_t)ahead ? n - (size_t)ahead : 0;
}

float sa_window_energy(const sa_ctx *a, size_t k) {
    if (k < a->enc_base || k >= sa_windows(a)) return -4.0f;
    return a->energy[k - a->enc_base];
}

int sa_frame_block(const sa_ctx *a, size_t i, float *out, ls_err *err) {
    size_t n = sa_windows(a);
    if (n == 0) return ls_fail(err, LS_EINVAL, "stream audio: frame %zu has no features yet", i);
    size_t last = a->finished ? a->L - 1 : n - 1;
    for (size_t r = 0; r < FEAT_CONTEXT; r++) {
        float *dst = out + r * FEAT_ENC_DIM;
        long long j = (long long)i - FEAT_CONTEXT / 2 + (long long)r; /* duplicated row */
        if (j < 0 || (a->finished && j > (long long)a->L + 1)) {
            memset(dst, 0, sizeof(float) * FEAT_ENC_DIM);
            continue;
        }
        size_t src = j >= 1 ? (size_t)(j - 1) : 0;
        if (src > last) src = last;
        if (src < a->enc_base)
            return ls_fail(err, LS_EINTERNAL, "stream audio: encoder row %zu of frame %zu dropped", src, i);
        memcpy(dst, a->enc + (src - a->enc_base) * FEAT_ENC_DIM, sizeof(float) * FEAT_ENC_DIM);
    }
    return 0;
}

void sa_release(sa_ctx *a, size_t frame) {
    if (frame > a->release) a->release = frame;
}
