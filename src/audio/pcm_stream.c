/* pcm_stream.c - one live signal in chunks -> 16 kHz mono (see pcm.h, pcm_stream_*).
 *
 * The resampler keeps its state across chunks, so the output is the one pcm_convert gives for the
 * concatenated chunks, sample for sample; each push hands over what swr has completed so far and
 * pcm_stream_finish ends the signal as pcm_convert does (zero padding, exactly
 * pcm_output_bound(all frames, rate) samples in total). */
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <stdlib.h>
#include <string.h>

#include "audio/pcm.h"
#include "audio/pcm_priv.h"

/* The tail at finish: what swr still holds (its filter delay) plus the rounding of the count. */
#define TAIL_MAX (4 * 192 + 64)

struct pcm_stream {
    pcm_format fmt;
    int rate, channels;
    SwrContext *swr;        /* NULL at 16 kHz: samples pass straight through */
    size_t max_frames;      /* input frames a push may carry */
    float *mono;            /* max_frames */
    size_t in_total, out_total;
    int finished;
    float tail[TAIL_MAX];
    size_t tail_n;
};

pcm_stream *pcm_stream_create(pcm_format fmt, int rate, int channels, size_t max_frames, ls_err *err) {
    if (pcm_check_format(fmt, rate, channels, err) != 0) return NULL;
    if (max_frames == 0 || max_frames > (size_t)1 << 26) {
        ls_fail(err, LS_EINVAL, "pcm_stream_create: %zu frames per chunk", max_frames);
        return NULL;
    }
    pcm_stream *s = calloc(1, sizeof *s);
    if (!s || !(s->mono = malloc(max_frames * sizeof(float)))) goto oom;
    s->fmt = fmt, s->rate = rate, s->channels = channels, s->max_frames = max_frames;
    if (rate != PCM_RATE) {
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        if (swr_alloc_set_opts2(&s->swr, &mono, AV_SAMPLE_FMT_FLT, PCM_RATE, &mono, AV_SAMPLE_FMT_FLT, rate, 0,
                                NULL) < 0 || !s->swr || swr_init(s->swr) < 0)
            goto oom;
    }
    return s;
oom:
    pcm_stream_free(s);
    ls_fail(err, LS_ENOMEM, "cannot create a %d Hz stream resampler", rate);
    return NULL;
}

void pcm_stream_free(pcm_stream *s) {
    if (!s) return;
    swr_free(&s->swr);
    free(s->mono);
    free(s);
}

void pcm_stream_reset(pcm_stream *s) {
    if (s->swr) swr_init(s->swr); /* clean filter state, same rates: it cannot fail here */
    s->in_total = s->out_total = s->tail_n = 0;
    s->finished = 0;
}

size_t pcm_stream_bound(const pcm_stream *s, size_t n_bytes) {
    size_t n = n_bytes / ((s->fmt == PCM_S16LE ? 2u : 4u) * (size_t)s->channels);
    return pcm_output_bound(s->in_total + n, s->rate) - s->out_total;
}

int pcm_stream_push(pcm_stream *s, const void *bytes, size_t n_bytes, float *out, size_t out_cap, size_t *n_out,
                    ls_err *err) {
    *n_out = 0;
    size_t n = 0;
    if (s->finished) return ls_fail(err, LS_EINVAL, "stream audio after its end (reset first)");
    if (!bytes) return ls_fail(err, LS_EINVAL, "no audio bytes");
    if (pcm_frames(n_bytes, s->fmt, s->channels, &n, err) != 0) return -1;
    if (n > s->max_frames)
        return ls_fail(err, LS_EINVAL, "a chunk of %zu frames at %d Hz exceeds the limit of %zu (%.1f s)", n, s->rate,
                       s->max_frames, (double)s->max_frames / s->rate);
    const size_t room = pcm_stream_bound(s, n_bytes);
    if (out_cap < room) return ls_fail(err, LS_EINVAL, "output holds %zu samples, %zu needed", out_cap, room);
    if (!s->swr) {
        if (pcm_to_mono(bytes, n, s->fmt, s->channels, out, err) != 0) return -1;
        s->in_total += n, s->out_total += n;
        *n_out = n;
        return 0;
    }
    if (pcm_to_mono(bytes, n, s->fmt, s->channels, s->mono, err) != 0) return -1;
    long got = pcm_swr_collect(s->swr, s->mono, n, out, room);
    if (got < 0) return ls_fail(err, LS_EINTERNAL, "resampling %d Hz failed", s->rate);
    s->in_total += n, s->out_total += (size_t)got;
    *n_out = (size_t)got;
    return 0;
}

int pcm_stream_finish(pcm_stream *s, const float **tail, size_t *n, ls_err *err) {
    if (!s->finished) {
        const size_t want = pcm_output_bound(s->in_total, s->rate) - s->out_total;
        if (want > TAIL_MAX) return ls_fail(err, LS_EINTERNAL, "stream resampler tail of %zu samples", want);
        if (s->swr && want) {
            if (swr_inject_silence(s->swr, (int)pcm_swr_padding(s->rate)) < 0)
                return ls_fail(err, LS_EINTERNAL, "resampler padding failed");
            long got = pcm_swr_collect(s->swr, s->mono, 0, s->tail, want);
            if (got != (long)want)
                return ls_fail(err, LS_EINTERNAL, "resampling %d Hz gave %ld of %zu tail samples", s->rate, got, want);
        }
        s->tail_n = s->swr ? want : 0;
        s->out_total += s->tail_n;
        s->finished = 1;
    }
    *tail = s->tail;
    *n = s->tail_n;
    return 0;
}
