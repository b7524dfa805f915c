/* pcm_convert.c - the per-request converter of pcm.h: raw s16le/f32le bytes -> 16 kHz mono float.
 *
 * Deinterleaving and channel averaging are a hand-written loop because every sample has to be
 * checked for NaN/Inf anyway; resampling is libswresample's. Per call this file allocates nothing:
 * the mono scratch is sized at creation, and SwrContexts are cached per input rate. */
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/pcm.h"
#include "audio/pcm_priv.h"

typedef struct {
    int rate;                /* 0: empty slot */
    unsigned long long used; /* tick of the last use, for least-recently-used replacement */
    SwrContext *swr;
} swr_slot;

struct pcm_converter {
    size_t max_samples;      /* output limit */
    size_t mono_cap;         /* input frames the scratch holds: enough for 48 kHz */
    float *mono;
    unsigned long long tick;
    swr_slot slot[PCM_SWR_SLOTS];
};

pcm_converter *pcm_converter_create(size_t max_samples, ls_err *err) {
    const size_t ratio = PCM_MAX_RATE / PCM_RATE + 1;
    if (max_samples == 0 || max_samples > (size_t)INT_MAX / 4 / ratio) {
        ls_fail(err, LS_EINVAL, "pcm_converter_create: max_samples %zu out of range", max_samples);
        return NULL;
    }
    pcm_converter *c = calloc(1, sizeof *c);
    if (c) {
        c->max_samples = max_samples;
        c->mono_cap = max_samples * ratio;
        c->mono = malloc((c->mono_cap + pcm_swr_padding(PCM_MAX_RATE)) * sizeof(float));
    }
    if (!c || !c->mono) {
        pcm_converter_free(c);
        ls_fail(err, LS_ENOMEM, "pcm_converter_create: out of memory for %zu samples", max_samples);
        return NULL;
    }
    return c;
}

void pcm_converter_free(pcm_converter *c) {
    if (!c) return;
    for (int i = 0; i < PCM_SWR_SLOTS; i++) swr_free(&c->slot[i].swr);
    free(c->mono);
    free(c);
}

size_t pcm_output_bound(size_t n_frames, int rate) {
    if (rate <= 0 || n_frames > SIZE_MAX / PCM_RATE) return SIZE_MAX;
    return (n_frames * PCM_RATE + (size_t)rate - 1) / (size_t)rate;
}

size_t pcm_swr_padding(int rate) { return 32 * ((size_t)(rate > 0 ? rate : 0) / PCM_RATE + 1) + 64; }

long pcm_swr_collect(SwrContext *swr, const float *in, size_t n_in, float *out, size_t room) {
    uint8_t *dst = (uint8_t *)out;
    const uint8_t *src = (const uint8_t *)in;
    int got = swr_convert(swr, &dst, (int)room, &src, (int)n_in);
    size_t total = got > 0 ? (size_t)got : 0;
    while (got > 0 && total < room) { /* what swr buffered, without flushing */
        dst = (uint8_t *)(out + total);
        got = swr_convert(swr, &dst, (int)(room - total), &src, 0);
        if (got > 0) total += (size_t)got;
    }
    return got < 0 ? -1 : (long)total;
}

int pcm_check_format(pcm_format fmt, int rate, int channels, ls_err *err) {
    if (fmt != PCM_S16LE && fmt != PCM_F32LE)
        return ls_fail(err, LS_EINVAL, "unknown sample format %d (s16le or f32le)", (int)fmt);
    if (rate < PCM_MIN_RATE || rate > PCM_MAX_RATE)
        return ls_fail(err, LS_EINVAL, "sample rate %d Hz is outside %d..%d", rate, PCM_MIN_RATE,
                       PCM_MAX_RATE);
    if (channels < 1 || channels > PCM_MAX_CHANNELS)
        return ls_fail(err, LS_EINVAL, "%d channels (supported: 1..%d)", channels, PCM_MAX_CHANNELS);
    return 0;
}

int pcm_frames(size_t n_bytes, pcm_format fmt, int channels, size_t *n, ls_err *err) {
    const size_t frame_bytes = (fmt == PCM_S16LE ? 2u : 4u) * (size_t)channels;
    if (n_bytes == 0) return ls_fail(err, LS_EINVAL, "no audio bytes");
    if (n_bytes % frame_bytes)
        return ls_fail(err, LS_EINVAL, "%zu bytes is not a whole number of %zu-byte frames", n_bytes, frame_bytes);
    *n = n_bytes / frame_bytes;
    return 0;
}

/* Averages the channels of n interleaved frames into dst, checking f32 samples. */
int pcm_to_mono(const unsigned char *src, size_t n, pcm_format fmt, int channels, float *dst,
                   ls_err *err) {
    const float inv = 1.0f / (float)channels;
    if (fmt == PCM_S16LE) {
        for (size_t i = 0; i < n; i++) {
            int32_t sum = 0;
            for (int ch = 0; ch < channels; ch++) {
                int16_t v;
                memcpy(&v, src + (i * (size_t)channels + (size_t)ch) * 2, 2);
                sum += v;
            }
            dst[i] = (float)sum * (1.0f / 32768.0f) * inv;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        float sum = 0.0f;
        for (int ch = 0; ch < channels; ch++) {
            float v;
            memcpy(&v, src + (i * (size_t)channels + (size_t)ch) * 4, 4);
            if (!(fabsf(v) <= PCM_MAX_ABS))
                return ls_fail(err, LS_EINVAL, "audio frame %zu channel %d is %g (NaN, Inf or beyond +-%g)",
                               i, ch, (double)v, (double)PCM_MAX_ABS);
            sum += v;
        }
        dst[i] = channels == 1 ? sum : sum * inv;
    }
    return 0;
}

/* The cached SwrContext for rate, re-initialised to a clean state; replaces the LRU slot. */
static SwrContext *swr_for_rate(pcm_converter *c, int rate, ls_err *err) {
    swr_slot *s = NULL;
    for (int i = 0; i < PCM_SWR_SLOTS && !s; i++)
        if (c->slot[i].rate == rate) s = &c->slot[i];
    if (!s) {
        s = &c->slot[0];
        for (int i = 1; i < PCM_SWR_SLOTS; i++)
            if (c->slot[i].used < s->used) s = &c->slot[i];
        swr_free(&s->swr);
        s->rate = 0;
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        if (swr_alloc_set_opts2(&s->swr, &mono, AV_SAMPLE_FMT_FLT, PCM_RATE, &mono,
                                AV_SAMPLE_FMT_FLT, rate, 0, NULL) < 0 || !s->swr) {
            ls_fail(err, LS_ENOMEM, "cannot create a resampler for %d Hz", rate);
            return NULL;
        }
        s->rate = rate;
    }
    s->used = ++c->tick;
    /* swr_init resets the filter state (each request is a separate signal) and keeps the filter
     * bank, since the rates are unchanged. */
    if (swr_init(s->swr) < 0) {
        ls_fail(err, LS_EINTERNAL, "cannot initialise the resampler for %d Hz", rate);
        return NULL;
    }
    return s->swr;
}

int pcm_convert(pcm_converter *c, const void *bytes, size_t n_bytes, pcm_format fmt, int rate,
                int channels, float *out, size_t out_cap, size_t *n_out, ls_err *err) {
    if (!c || !out || !n_out || (n_bytes && !bytes))
        return ls_fail(err, LS_EINVAL, "pcm_convert: NULL argument");
    *n_out = 0;
    size_t n = 0;
    if (pcm_check_format(fmt, rate, channels, err) != 0 || pcm_frames(n_bytes, fmt, channels, &n, err) != 0)
        return -1;
    const size_t bound = pcm_output_bound(n, rate);
    if (bound > c->max_samples || n > c->mono_cap)
        return ls_fail(err, LS_EINVAL, "audio of %zu frames at %d Hz exceeds the limit of %zu samples "
                       "(%.1f s)", n, rate, c->max_samples, (double)c->max_samples / PCM_RATE);
    if (out_cap < bound)
        return ls_fail(err, LS_EINVAL, "output holds %zu samples, %zu needed", out_cap, bound);
    if (rate == PCM_RATE) {
        if (pcm_to_mono(bytes, n, fmt, channels, out, err)) return -1;
        *n_out = n;
        return 0;
    }
    if (pcm_to_mono(bytes, n, fmt, channels, c->mono, err)) return -1;
    /* Instead of swr's flush (which mirrors the signal's tail and yields an irregular count,
     * nothing at all below ~60 input frames), pad with zeros - as the mel front end does - and
     * keep exactly bound = ceil(n * 16000 / rate) outputs: the 16 kHz instants inside the input. */
    const size_t pad = pcm_swr_padding(rate);
    memset(c->mono + n, 0, pad * sizeof(float));
    SwrContext *swr = swr_for_rate(c, rate, err);
    if (!swr) return -1;
    long total = pcm_swr_collect(swr, c->mono, n + pad, out, bound);
    if (total != (long)bound)
        return ls_fail(err, LS_EINTERNAL, "resampling %d Hz gave %ld of %zu samples", rate, total, bound);
    *n_out = bound;
    return 0;
}
