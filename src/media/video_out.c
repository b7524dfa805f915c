/* video_out.c - MP4 writer: libx264/MJPEG video plus native AAC audio, muxed with libavformat. */
#include "media/video_out.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "media/video_in.h" /* MEDIA_MAX_DIM */

struct media_writer {
    AVFormatContext *fmt;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVFrame *vframe, *aframe;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *padded; /* even-sized BGR scratch, only when width or height is odd */
    int width, height, enc_w, enc_h, fps;
    int64_t frames;
    float *audio;      /* the audio at the encoder's rate (mono, so planar == packed) */
    int64_t audio_len; /* samples in `audio` */
    int64_t audio_pos; /* samples already sent to the encoder */
    int arate;
    int file_open;
    char *path;
};

static int av_fail(ls_err *err, ls_code code, const char *what, int ret) {
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(ret, buf, sizeof buf);
    return ls_fail(err, code, "%s: %s", what, buf);
}

const char *media_writer_auto_codec(void) {
    return avcodec_find_encoder_by_name("libx264") ? "libx264" : "mjpeg";
}

static void writer_free(media_writer *w) {
    if (!w) return;
    sws_freeContext(w->sws);
    av_frame_free(&w->vframe);
    av_frame_free(&w->aframe);
    av_packet_free(&w->pkt);
    avcodec_free_context(&w->venc);
    avcodec_free_context(&w->aenc);
    if (w->fmt && w->file_open) avio_closep(&w->fmt->pb);
    avformat_free_context(w->fmt);
    free(w->padded);
    free(w->audio);
    free(w->path);
    free(w);
}

void media_writer_abort(media_writer *w) {
    if (!w) return;
    int remove_file = w->file_open;
    char *path = w->path;
    w->path = NULL;
    writer_free(w);
    if (remove_file && path) unlink(path); /* never leave a half-written MP4 behind */
    free(path);
}

/* Sends every packet the encoder has ready to the muxer. */
static int drain(media_writer *w, AVCodecContext *enc, AVStream *st, ls_err *err) {
    for (;;) {
        int ret = avcodec_receive_packet(enc, w->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return 0;
        if (ret < 0) return av_fail(err, LS_EFORMAT, "encoding failed", ret);
        av_packet_rescale_ts(w->pkt, enc->time_base, st->time_base);
        w->pkt->stream_index = st->index;
        ret = av_interleaved_write_frame(w->fmt, w->pkt); /* takes the packet's data */
        if (ret < 0) return av_fail(err, LS_EIO, w->path, ret);
    }
}

static int open_video(media_writer *w, const media_writer_cfg *cfg, ls_err *err) {
    const AVCodec *codec = NULL;
    if (cfg->codec != MEDIA_CODEC_MJPEG) codec = avcodec_find_encoder_by_name("libx264");
    if (!codec && cfg->codec == MEDIA_CODEC_H264)
        return ls_fail(err, LS_EFORMAT, "this FFmpeg build has no libx264 encoder");
    int h264 = codec != NULL;
    if (!h264) codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec) return ls_fail(err, LS_EFORMAT, "this FFmpeg build has neither libx264 nor MJPEG");
    AVCodecContext *c = w->venc = avcodec_alloc_context3(codec);
    if (!c) return ls_fail(err, LS_ENOMEM, "out of memory");
    c->width = w->enc_w;
    c->height = w->enc_h;
    c->time_base = (AVRational){1, w->fps};
    c->framerate = (AVRational){w->fps, 1};
    c->pix_fmt = h264 ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_YUVJ420P;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    if (h264) {
        char crf[16];
        snprintf(crf, sizeof crf, "%d", cfg->crf > 0 ? cfg->crf : 20);
        av_dict_set(&opts, "crf", crf, 0);
        av_dict_set(&opts, "preset", "veryfast", 0);
    } else {
        /* Fixed quantiser ~ JPEG quality 90; slice threads only, so no frame is held by a thread
         * and the reused input frame stays writable. */
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * 2;
        c->thread_type = FF_THREAD_SLICE;
    }
    int ret = avcodec_open2(c, codec, &opts);
    av_dict_free(&opts);
    if (ret < 0) return av_fail(err, LS_EFORMAT, "cannot open the video encoder", ret);
    w->vst = avformat_new_stream(w->fmt, NULL);
    if (!w->vst) return ls_fail(err, LS_ENOMEM, "out of memory");
    w->vst->time_base = c->time_base;
    w->vst->avg_frame_rate = c->framerate;
    ret = avcodec_parameters_from_context(w->vst->codecpar, c);
    if (ret < 0) return av_fail(err, LS_EFORMAT, "video stream parameters", ret);
    w->vframe = av_frame_alloc();
    if (!w->vframe) return ls_fail(err, LS_ENOMEM, "out of memory");
    w->vframe->format = c->pix_fmt;
    w->vframe->width = c->width;
    w->vframe->height = c->height;
    if (!h264) w->vframe->quality = c->global_quality;
    ret = av_frame_get_buffer(w->vframe, 0);
    if (ret < 0) return av_fail(err, LS_ENOMEM, "video frame", ret);
    w->sws = sws_getContext(w->enc_w, w->enc_h, AV_PIX_FMT_BGR24, w->enc_w, w->enc_h, c->pix_fmt,
                            SWS_BICUBIC, NULL, NULL, NULL);
    if (!w->sws) return ls_fail(err, LS_EFORMAT, "cannot set up BGR to YUV conversion");
    if (w->enc_w != w->width || w->enc_h != w->height) {
        w->padded = malloc((size_t)w->enc_w * w->enc_h * 3);
        if (!w->padded) return ls_fail(err, LS_ENOMEM, "out of memory");
    }
    return 0;
}

/* Picks the input rate when the encoder takes it, else the nearest higher supported rate. */
static int pick_rate(const AVCodec *codec, int want) {
    const int *r = codec->supported_samplerates;
    if (!r) return want;
    int best = 0;
    for (; *r; r++) {
        if (*r == want) return want;
        if (*r > want && (!best || *r < best)) best = *r;
    }
    return best ? best : 48000;
}

/* Resamples the whole clip once at open, so writing frames only copies samples. */
static int resample_audio(media_writer *w, const media_writer_cfg *cfg, ls_err *err) {
    SwrContext *swr = NULL;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int ret = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLTP, w->arate, &mono,
                                  AV_SAMPLE_FMT_FLT, cfg->audio_rate, 0, NULL);
    if (ret >= 0) ret = swr_init(swr);
    if (ret < 0) {
        swr_free(&swr);
        return av_fail(err, LS_EFORMAT, "cannot set up audio resampling", ret);
    }
    int64_t cap = av_rescale_rnd((int64_t)cfg->audio_samples, w->arate, cfg->audio_rate,
                                 AV_ROUND_UP) + 256;
    w->audio = malloc((size_t)cap * sizeof(float));
    if (!w->audio) {
        swr_free(&swr);
        return ls_fail(err, LS_ENOMEM, "out of memory for audio");
    }
    const uint8_t *in[1] = {(const uint8_t *)cfg->audio};
    uint8_t *out[1] = {(uint8_t *)w->audio};
    int n = cfg->audio_samples ? swr_convert(swr, out, (int)cap, in, (int)cfg->audio_samples) : 0;
    if (n >= 0) {
        out[0] = (uint8_t *)(w->audio + n);
        int tail = swr_convert(swr, out, (int)(cap - n), NULL, 0); /* the resampler's delay */
        n = tail < 0 ? tail : n + tail;
    }
    swr_free(&swr);
    if (n < 0) return av_fail(err, LS_EFORMAT, "audio resampling failed", n);
    w->audio_len = n;
    return 0;
}

static int open_audio(media_writer *w, const media_writer_cfg *cfg, ls_err *err) {
    if (cfg->audio_rate < 8000 || cfg->audio_rate > 192000)
        return ls_fail(err, LS_EINVAL, "audio sample rate %d Hz is out of range", cfg->audio_rate);
    if (cfg->audio_samples > (size_t)INT32_MAX)
        return ls_fail(err, LS_EINVAL, "audio too long (%zu samples)", cfg->audio_samples);
    for (size_t i = 0; i < cfg->audio_samples; i++)
        if (!isfinite(cfg->audio[i]))
            return ls_fail(err, LS_EINVAL, "audio sample %zu is not a finite number", i);
    const AVCodec *codec = avcodec_find_encoder_by_name("aac");
    if (!codec) return ls_fail(err, LS_EFORMAT, "this FFmpeg build has no AAC encoder");
    AVCodecContext *c = w->aenc = avcodec_alloc_context3(codec);
    if (!c) return ls_fail(err, LS_ENOMEM, "out of memory");
    w->arate = pick_rate(codec, cfg->audio_rate);
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->sample_rate = w->arate;
    c->ch_layout = (AVChannelLayout)AV_CHANNEL_LAYOUT_MONO;
    c->bit_rate = 64000;
    c->time_base = (AVRational){1, w->arate};
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int ret = avcodec_open2(c, codec, NULL);
    if (ret < 0) return av_fail(err, LS_EFORMAT, "cannot open the AAC encoder", ret);
    w->ast = avformat_new_stream(w->fmt, NULL);
    if (!w->ast) return ls_fail(err, LS_ENOMEM, "out of memory");
    w->ast->time_base = c->time_base;
    ret = avcodec_parameters_from_context(w->ast->codecpar, c);
    if (ret < 0) return av_fail(err, LS_EFORMAT, "audio stream parameters", ret);
    w->aframe = av_frame_alloc();
    if (!w->aframe) return ls_fail(err, LS_ENOMEM, "out of memory");
    w->aframe->format = c->sample_fmt;
    w->aframe->sample_rate = c->sample_rate;
    w->aframe->nb_samples = c->frame_size > 0 ? c->frame_size : 1024;
    av_channel_layout_copy(&w->aframe->ch_layout, &c->ch_layout);
    ret = av_frame_get_buffer(w->aframe, 0);
    if (ret < 0) return av_fail(err, LS_ENOMEM, "audio frame", ret);
    return resample_audio(w, cfg, err);
}

media_writer *media_writer_open(const char *path, const media_writer_cfg *cfg, ls_err *err) {
    if (!path || !cfg) return ls_fail(err, LS_EINVAL, "media_writer_open: NULL argument"), NULL;
    if (cfg->width < 1 || cfg->height < 1 || cfg->width > MEDIA_MAX_DIM || cfg->height > MEDIA_MAX_DIM)
        return ls_fail(err, LS_EINVAL, "video size %dx%d is out of range", cfg->width, cfg->height), NULL;
    int fps = cfg->fps ? cfg->fps : 25;
    if (fps < 1 || fps > 240) return ls_fail(err, LS_EINVAL, "fps %d is out of range 1..240", fps), NULL;
    if (cfg->audio_samples && !cfg->audio)
        return ls_fail(err, LS_EINVAL, "audio_samples given without audio"), NULL;
    media_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    }
    w->width = cfg->width;
    w->height = cfg->height;
    w->enc_w = (cfg->width + 1) & ~1; /* 4:2:0 needs even sizes */
    w->enc_h = (cfg->height + 1) & ~1;
    w->fps = fps;
    int ret = avformat_alloc_output_context2(&w->fmt, NULL, "mp4", path);
    if (ret < 0 || !w->fmt) {
        av_fail(err, LS_EFORMAT, "cannot set up the MP4 muxer", ret);
        goto fail;
    }
    if (!(w->pkt = av_packet_alloc())) {
        ls_fail(err, LS_ENOMEM, "out of memory");
        goto fail;
    }
    if (open_video(w, cfg, err) != 0) goto fail;
    if (cfg->audio && open_audio(w, cfg, err) != 0) goto fail;
    ret = avio_open(&w->fmt->pb, path, AVIO_FLAG_WRITE);
    if (ret < 0) {
        av_fail(err, LS_EIO, path, ret);
        goto fail;
    }
    w->file_open = 1;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "movflags", "+faststart", 0); /* index first: playable while downloading */
    ret = avformat_write_header(w->fmt, &opts);
    av_dict_free(&opts);
    if (ret < 0) {
        av_fail(err, LS_EIO, path, ret);
        goto fail;
    }
    return w;
fail:
    media_writer_abort(w);
    return NULL;
}

/* Sends one audio frame of n samples from audio_pos (zeros past the end of the clip). */
static int send_audio(media_writer *w, int n, ls_err *err) {
    int ret = av_frame_make_writable(w->aframe);
    if (ret < 0) return av_fail(err, LS_ENOMEM, "audio frame", ret);
    float *dst = (float *)w->aframe->data[0];
    int64_t have = w->audio_len - w->audio_pos;
    int copy = have <= 0 ? 0 : have < n ? (int)have : n;
    if (copy) memcpy(dst, w->audio + w->audio_pos, (size_t)copy * sizeof(float));
    memset(dst + copy, 0, (size_t)(n - copy) * sizeof(float));
    w->aframe->nb_samples = n;
    w->aframe->pts = w->audio_pos;
    ret = avcodec_send_frame(w->aenc, w->aframe);
    if (ret < 0) return av_fail(err, LS_EFORMAT, "audio encoding failed", ret);
    w->audio_pos += n;
    return drain(w, w->aenc, w->ast, err);
}

/* Sends whole audio frames up to the time of `frames` video frames; at the end also the partial
 * last one, so the audio lasts exactly as long as the video. */
static int feed_audio(media_writer *w, int final, ls_err *err) {
    if (!w->aenc) return 0;
    int64_t target = av_rescale(w->frames, w->arate, w->fps);
    int fs = w->aenc->frame_size > 0 ? w->aenc->frame_size : 1024;
    while (w->audio_pos + fs <= target)
        if (send_audio(w, fs, err) != 0) return -1;
    if (final && w->audio_pos < target) return send_audio(w, (int)(target - w->audio_pos), err);
    return 0;
}

static const uint8_t *pad_even(media_writer *w, const uint8_t *bgr) {
    size_t src_row = (size_t)w->width * 3, dst_row = (size_t)w->enc_w * 3;
    for (int y = 0; y < w->enc_h; y++) {
        int sy = y < w->height ? y : w->height - 1;
        uint8_t *d = w->padded + y * dst_row;
        memcpy(d, bgr + sy * src_row, src_row);
        if (w->enc_w > w->width) memcpy(d + src_row, d + src_row - 3, 3);
    }
    return w->padded;
}

int media_writer_write(media_writer *w, const uint8_t *bgr, ls_err *err) {
    if (!w || !bgr) return ls_fail(err, LS_EINVAL, "media_writer_write: NULL argument");
    if (w->padded) bgr = pad_even(w, bgr);
    int ret = av_frame_make_writable(w->vframe); /* no-op: nothing else holds the frame */
    if (ret < 0) return av_fail(err, LS_ENOMEM, "video frame", ret);
    const uint8_t *src[1] = {bgr};
    int stride[1] = {w->enc_w * 3};
    sws_scale(w->sws, src, stride, 0, w->enc_h, w->vframe->data, w->vframe->linesize);
    w->vframe->pts = w->frames;
    ret = avcodec_send_frame(w->venc, w->vframe);
    if (ret < 0) return av_fail(err, LS_EFORMAT, "video encoding failed", ret);
    w->frames++;
    if (drain(w, w->venc, w->vst, err) != 0) return -1;
    return feed_audio(w, 0, err);
}

int media_writer_close(media_writer *w, ls_err *err) {
    if (!w) return ls_fail(err, LS_EINVAL, "media_writer_close: NULL writer");
    int rc = feed_audio(w, 1, err);
    if (rc == 0 && avcodec_send_frame(w->venc, NULL) < 0) rc = ls_fail(err, LS_EFORMAT, "video flush failed");
    if (rc == 0) rc = drain(w, w->venc, w->vst, err);
    if (rc == 0 && w->aenc) {
        if (avcodec_send_frame(w->aenc, NULL) < 0) rc = ls_fail(err, LS_EFORMAT, "audio flush failed");
        if (rc == 0) rc = drain(w, w->aenc, w->ast, err);
    }
    if (rc == 0 && w->frames == 0) rc = ls_fail(err, LS_EINVAL, "%s: no frames were written", w->path);
    if (rc == 0) {
        int ret = av_write_trailer(w->fmt);
        if (ret < 0) rc = av_fail(err, LS_EIO, w->path, ret);
    }
    if (rc != 0) {
        media_writer_abort(w);
        return -1;
    }
    writer_free(w);
    return 0;
}
