/* pcm.c - decode/convert audio to 16 kHz mono float (pcm.h).
 *
 * Files go through libavformat/libavcodec and one SwrContext that averages the channels (a custom
 * 1/N matrix: libswresample's default stereo->mono mix is (L+R)/sqrt(2), not the mean) and
 * resamples. Raw request bytes are deinterleaved and averaged by hand - a short loop that must
 * look at every sample anyway to reject NaN/Inf - and only the resampling is left to swr. */
#include "audio/pcm.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/npy.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pcm_convert reads s16le/f32le with memcpy: add byte swapping for big-endian hosts"
#endif

/* Index of the first sample that is non-finite or beyond PCM_MAX_ABS, or n when all are fine. */
static size_t first_bad_sample(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(x[i]) <= PCM_MAX_ABS)) return i; /* false for NaN too */
    return n;
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* ---------------------------------------------------------------- .npy files */

static float *load_npy(const char *path, size_t max_samples, size_t *n_samples, ls_err *err) {
    npy_array a;
    if (npy_read_f32(path, max_samples, &a, err)) return NULL;
    if (!(a.ndim == 1 || (a.ndim == 2 && a.shape[1] == 1))) {
        ls_fail(err, LS_EFORMAT, "%s: expected float32 samples of shape [N] or [N, 1], got %d-d",
                path, a.ndim);
        npy_array_free(&a);
        return NULL;
    }
    if (a.count == 0) {
        ls_fail(err, LS_EINVAL, "%s: contains no audio samples", path);
        npy_array_free(&a);
        return NULL;
    }
    size_t bad = first_bad_sample(a.data, a.count);
    if (bad < a.count) {
        ls_fail(err, LS_EINVAL, "%s: sample %zu is %g (NaN, Inf or beyond +-%g)", path, bad,
                (double)a.data[bad], (double)PCM_MAX_ABS);
        npy_array_free(&a);
        return NULL;
    }
    *n_samples = a.count;
    return a.data;
}

/* ---------------------------------------------------------------- FFmpeg files */

typedef struct {
    const char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    SwrContext *swr;
    AVPacket *pkt;
    AVFrame *frame;
    float *out;
    size_t n, cap, max;
    int64_t decoded;      /* input samples per channel */
} decoder;

static int av_fail(ls_err *err, ls_code code, const char *path, const char *what, int rc) {
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(rc, buf, sizeof buf);
    return ls_fail(err, code, "%s: %s: %s", path, what, buf);
}

static int open_decoder(decoder *d, ls_err *err) {
    int rc = avformat_open_input(&d->fmt, d->path, NULL, NULL);
    if (rc < 0)
        return av_fail(err, rc == AVERROR(ENOENT) ? LS_ENOTFOUND : LS_EFORMAT, d->path,
                       "cannot open as audio", rc);
    if ((rc = avformat_find_stream_info(d->fmt, NULL)) < 0)
        return av_fail(err, LS_EFORMAT, d->path, "cannot read stream info", rc);
    const AVCodec *codec = NULL;
    int si = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (si < 0) return av_fail(err, LS_EFORMAT, d->path, "no decodable audio stream", si);
    d->dec = avcodec_alloc_context3(codec);
    if (!d->dec) return ls_fail(err, LS_ENOMEM, "%s: out of memory", d->path);
    if ((rc = avcodec_parameters_to_context(d->dec, d->fmt->streams[si]->codecpar)) < 0 ||
        (rc = avcodec_open2(d->dec, codec, NULL)) < 0)
        return av_fail(err, LS_EFORMAT, d->path, "cannot open the audio decoder", rc);
    const int ch = d->dec->ch_layout.nb_channels, rate = d->dec->sample_rate;
    if (ch < 1 || ch > PCM_MAX_CHANNELS)
        return ls_fail(err, LS_EFORMAT, "%s: %d channels (supported: 1..%d)", d->path, ch,
                       PCM_MAX_CHANNELS);
    if (rate < 1000 || rate > 384000)
        return ls_fail(err, LS_EFORMAT, "%s: sample rate %d Hz is out of range", d->path, rate);
    AVChannelLayout in_layout, mono = AV_CHANNEL_LAYOUT_MONO;
    if (d->dec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) av_channel_layout_default(&in_layout, ch);
    else if (av_channel_layout_copy(&in_layout, &d->dec->ch_layout) < 0)
        return ls_fail(err, LS_ENOMEM, "%s: out of memory", d->path);
    rc = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, PCM_RATE, &in_layout,
                             d->dec->sample_fmt, rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    double matrix[PCM_MAX_CHANNELS];
    for (int i = 0; i < ch; i++) matrix[i] = 1.0 / ch;
    /* Resample in float even for s16 input (swr would pick s16 internally), like pcm_convert. */
    if (rc < 0 || (rc = swr_set_matrix(d->swr, matrix, ch)) < 0 ||
        (rc = av_opt_set_sample_fmt(d->swr, "internal_sample_fmt", AV_SAMPLE_FMT_FLTP, 0)) < 0 ||
        (rc = swr_init(d->swr)) < 0)
        return av_fail(err, LS_EFORMAT, d->path, "cannot set up the resampler", rc);
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->pkt || !d->frame) return ls_fail(err, LS_ENOMEM, "%s: out of memory", d->path);
    return si;
}

/* Resamples in_count samples (in: the frame's planes; a dummy with in_count 0 only collects what
 * swr buffered - never NULL, which would make swr flush) onto the end of d->out, growing it. */
static int push(decoder *d, const uint8_t **in, int in_count, ls_err *err) {
    const int room_needed = swr_get_out_samples(d->swr, in_count);
    if (room_needed < 0) return av_fail(err, LS_EFORMAT, d->path, "resampler", room_needed);
    if (d->n + (size_t)room_needed > d->cap) {
        size_t cap = d->cap ? d->cap : 16384;
        while (cap < d->n + (size_t)room_needed) cap *= 2;
        float *p = realloc(d->out, cap * sizeof(float));
        if (!p) return ls_fail(err, LS_ENOMEM, "%s: out of memory for %zu samples", d->path, cap);
        d->out = p;
        d->cap = cap;
    }
    uint8_t *dst = (uint8_t *)(d->out + d->n);
    int got = swr_convert(d->swr, &dst, (int)(d->cap - d->n), in, in_count);
    if (got < 0) return av_fail(err, LS_EFORMAT, d->path, "resampling failed", got);
    size_t bad = first_bad_sample(d->out + d->n, (size_t)got);
    if (bad < (size_t)got)
        return ls_fail(err, LS_EINVAL, "%s: non-finite or huge sample near %.3f s", d->path,
                       (double)(d->n + bad) / PCM_RATE);
    d->n += (size_t)got;
    if (d->max && d->n > d->max)
        return ls_fail(err, LS_EINVAL, "%s: longer than the limit of %zu samples (%.1f s)", d->path,
                       d->max, (double)d->max / PCM_RATE);
    return got;
}

/* Ends the signal like pcm_convert does: zero padding instead of swr's flush (which mirrors the
 * tail and yields an irregular count), then exactly pcm_output_bound(decoded, rate) samples. */
static int finish(decoder *d, ls_err *err) {
    const size_t want = pcm_output_bound((size_t)d->decoded, d->dec->sample_rate);
    int rc = swr_inject_silence(d->swr, (int)pcm_swr_padding(d->dec->sample_rate));
    if (rc < 0) return av_fail(err, LS_EFORMAT, d->path, "resampler", rc);
    const uint8_t *dummy[1] = {(const uint8_t *)&rc};
    while (d->n < want) {
        if ((rc = push(d, dummy, 0, err)) < 0) return -1;
        if (rc == 0) break;
    }
    if (d->n < want)
        return ls_fail(err, LS_EINTERNAL, "%s: resampler gave %zu of %zu samples", d->path, d->n,
                       want);
    d->n = want;
    return 0;
}

/* Receives every frame the decoder has ready and resamples it. */
static int drain(decoder *d, ls_err *err) {
    for (;;) {
        int rc = avcodec_receive_frame(d->dec, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return av_fail(err, LS_EFORMAT, d->path, "corrupt audio data", rc);
        if (d->frame->sample_rate != d->dec->sample_rate || d->frame->format != d->dec->sample_fmt ||
            d->frame->ch_layout.nb_channels != d->dec->ch_layout.nb_channels) {
            av_frame_unref(d->frame);
            return ls_fail(err, LS_EFORMAT, "%s: audio format changes mid-stream", d->path);
        }
        d->decoded += d->frame->nb_samples;
        rc = push(d, (const uint8_t **)d->frame->extended_data, d->frame->nb_samples, err);
        av_frame_unref(d->frame);
        if (rc < 0) return -1;
    }
}

static int decode_all(decoder *d, int si, ls_err *err) {
    int rc;
    while ((rc = av_read_frame(d->fmt, d->pkt)) >= 0) {
        if (d->pkt->stream_index == si) {
            /* Demuxers flag a packet cut short by end of file (a WAV whose data chunk declares
             * more bytes than the file has): that is a truncated file, not a shorter signal. */
            if (d->pkt->flags & AV_PKT_FLAG_CORRUPT) {
                av_packet_unref(d->pkt);
                return ls_fail(err, LS_EFORMAT, "%s: truncated or corrupt audio data near %.3f s",
                               d->path, (double)d->decoded / d->dec->sample_rate);
            }
            int s = avcodec_send_packet(d->dec, d->pkt);
            av_packet_unref(d->pkt);
            if (s < 0) return av_fail(err, LS_EFORMAT, d->path, "corrupt audio data", s);
            if (drain(d, err)) return -1;
        } else {
            av_packet_unref(d->pkt);
        }
    }
    if (rc != AVERROR_EOF) return av_fail(err, LS_EFORMAT, d->path, "read failed", rc);
    if ((rc = avcodec_send_packet(d->dec, NULL)) < 0)
        return av_fail(err, LS_EFORMAT, d->path, "decoder flush failed", rc);
    if (drain(d, err)) return -1;
    /* Containers that declare a duration the decoder did not reach were truncated (the WAV
     * demuxer only declares one when the data fits the file, so it relies on the flag above). */
    const AVStream *st = d->fmt->streams[si];
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
        int64_t want = av_rescale_q(st->duration, st->time_base, (AVRational){1, d->dec->sample_rate});
        if (d->decoded < want)
            return ls_fail(err, LS_EFORMAT, "%s: truncated: header declares %lld samples, file holds %lld",
                           d->path, (long long)want, (long long)d->decoded);
    }
    if (d->decoded == 0) return ls_fail(err, LS_EINVAL, "%s: contains no audio samples", d->path);
    return finish(d, err);
}

static float *load_ffmpeg(const char *path, size_t max_samples, size_t *n_samples, ls_err *err) {
    decoder d = {.path = path, .max = max_samples};
    int si = open_decoder(&d, err);
    int ok = si >= 0 && decode_all(&d, si, err) == 0;
    av_frame_free(&d.frame);
    av_packet_free(&d.pkt);
    swr_free(&d.swr);
    avcodec_free_context(&d.dec);
    avformat_close_input(&d.fmt);
    if (!ok) {
        free(d.out);
        return NULL;
    }
    *n_samples = d.n;
    return d.out;
}

float *pcm_load_file(const char *path, size_t max_samples, size_t *n_samples, ls_err *err) {
    if (!path || !n_samples) {
        ls_fail(err, LS_EINVAL, "pcm_load_file: NULL argument");
        return NULL;
    }
    *n_samples = 0;
    if (has_suffix(path, ".npy")) return load_npy(path, max_samples, n_samples, err);
    return load_ffmpeg(path, max_samples, n_samples, err);
}
