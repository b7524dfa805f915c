/* video_in.c - video decoding with libavformat/libavcodec and BGR24 conversion with libswscale. */
#include "media/video_in.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct decoder {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    uint8_t *bgr;     /* one packed BGR24 frame, allocated at the first frame */
    uint8_t *wide;    /* swscale's output: rows of `stride` bytes (see deliver) */
    int stride;
    int stream, width, height, count;
    media_frame_fn fn;
    void *user;
    const char *path;
} decoder;

static int av_fail(ls_err *err, ls_code code, const char *path, const char *what, int ret) {
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(ret, buf, sizeof buf);
    return ls_fail(err, code, "%s: %s: %s", path, what, buf);
}

static void decoder_close(decoder *d) {
    sws_freeContext(d->sws);
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    free(d->bgr);
    av_free(d->wide);
}

static int decoder_open(decoder *d, const char *path, ls_err *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return ls_fail(err, errno == ENOENT ? LS_ENOTFOUND : LS_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ls_fail(err, LS_EINVAL, "%s: not a regular file", path);
    int ret = avformat_open_input(&d->fmt, path, NULL, NULL);
    if (ret < 0) return av_fail(err, LS_EFORMAT, path, "cannot open as a video", ret);
    ret = avformat_find_stream_info(d->fmt, NULL);
    if (ret < 0) return av_fail(err, LS_EFORMAT, path, "cannot read stream info", ret);
    const AVCodec *codec = NULL;
    d->stream = av_find_best_stream(d->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (d->stream < 0 || !codec) return ls_fail(err, LS_EFORMAT, "%s: no decodable video stream", path);
    d->dec = avcodec_alloc_context3(codec);
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->dec || !d->pkt || !d->frame) return ls_fail(err, LS_ENOMEM, "%s: out of memory", path);
    ret = avcodec_parameters_to_context(d->dec, d->fmt->streams[d->stream]->codecpar);
    if (ret < 0) return av_fail(err, LS_EFORMAT, path, "bad codec parameters", ret);
    ret = avcodec_open2(d->dec, codec, NULL);
    if (ret < 0) return av_fail(err, LS_EFORMAT, path, "cannot open the decoder", ret);
    return 0;
}

/* Converts the decoded frame to BGR24 and hands it to the callback. */
static int deliver(decoder *d, ls_err *err) {
    AVFrame *f = d->frame;
    if (f->width <= 0 || f->height <= 0 || f->width > MEDIA_MAX_DIM || f->height > MEDIA_MAX_DIM)
        return ls_fail(err, LS_EFORMAT, "%s: frame %d has an unusable size %dx%d", d->path, d->count,
                       f->width, f->height);
    if (!d->bgr) {
        d->width = f->width;
        d->height = f->height;
        d->stride = FFALIGN(d->width, 64) * 3;
        d->bgr = malloc((size_t)d->width * d->height * 3);
        d->wide = av_malloc((size_t)d->stride * (d->height + 1));
        if (!d->bgr || !d->wide) return ls_fail(err, LS_ENOMEM, "%s: out of memory", d->path);
    } else if (f->width != d->width || f->height != d->height) {
        return ls_fail(err, LS_EFORMAT, "%s: frame %d is %dx%d but frame 0 was %dx%d", d->path,
                       d->count, f->width, f->height, d->width, d->height);
    }
    /* SWS_BICUBIC as OpenCV's VideoCapture uses, so chroma upsampling matches cv2 reads. */
    d->sws = sws_getCachedContext(d->sws, f->width, f->height, f->format, d->width, d->height,
                                  AV_PIX_FMT_BGR24, SWS_BICUBIC, NULL, NULL, NULL);
    if (!d->sws) return ls_fail(err, LS_EFORMAT, "%s: cannot convert pixel format %d", d->path, f->format);
    /* swscale's SIMD YUV->RGB paths write whole blocks of pixels and lose the last columns of
     * widths that are not a multiple of 8 when rows are packed tightly (a 66-wide frame came back
     * with 2 black columns), so convert into rows padded to 64 pixels, as OpenCV does, then pack. */
    uint8_t *dst[4] = {d->wide, NULL, NULL, NULL};
    int dst_stride[4] = {d->stride, 0, 0, 0};
    sws_scale(d->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
    for (int y = 0; y < d->height; y++)
        memcpy(d->bgr + (size_t)y * d->width * 3, d->wide + (size_t)y * d->stride, (size_t)d->width * 3);
    av_frame_unref(f);
    if (d->fn(d->user, d->count, d->bgr, d->width, d->height, err) != 0) return -1;
    d->count++;
    return 0;
}

static int drain(decoder *d, ls_err *err) {
    for (;;) {
        int ret = avcodec_receive_frame(d->dec, d->frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return 0;
        if (ret < 0) return av_fail(err, LS_EFORMAT, d->path, "corrupt video data", ret);
        if (deliver(d, err) != 0) return -1;
    }
}

static int decode_all(decoder *d, ls_err *err) {
    int ret;
    while ((ret = av_read_frame(d->fmt, d->pkt)) >= 0) {
        if (d->pkt->stream_index == d->stream) {
            ret = avcodec_send_packet(d->dec, d->pkt);
            av_packet_unref(d->pkt);
            if (ret < 0 && ret != AVERROR(EAGAIN))
                return av_fail(err, LS_EFORMAT, d->path, "corrupt video data", ret);
            if (drain(d, err) != 0) return -1;
        } else {
            av_packet_unref(d->pkt);
        }
    }
    if (ret != AVERROR_EOF) return av_fail(err, LS_EFORMAT, d->path, "read error", ret);
    ret = avcodec_send_packet(d->dec, NULL); /* flush the decoder's delayed frames */
    if (ret < 0 && ret != AVERROR_EOF) return av_fail(err, LS_EFORMAT, d->path, "flush failed", ret);
    if (drain(d, err) != 0) return -1;
    if (d->count == 0) return ls_fail(err, LS_EFORMAT, "%s: no frames could be decoded", d->path);
    return 0;
}

int media_video_decode(const char *path, media_frame_fn fn, void *user, media_video_info *info,
                       ls_err *err) {
    if (!path || !fn) return ls_fail(err, LS_EINVAL, "media_video_decode: NULL argument");
    decoder d = {.fn = fn, .user = user, .path = path, .stream = -1};
    int rc = decoder_open(&d, path, err);
    if (rc == 0) rc = decode_all(&d, err);
    if (rc == 0 && info) {
        AVRational r = av_guess_frame_rate(d.fmt, d.fmt->streams[d.stream], NULL);
        info->width = d.width;
        info->height = d.height;
        info->fps = r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0;
        info->frame_count = d.count;
    }
    decoder_close(&d);
    return rc;
}

void media_quiet_ffmpeg_logs(void) { av_log_set_level(AV_LOG_ERROR); }

typedef struct block {
    uint8_t *data;
    size_t used, cap, max;
    const char *path;
} block;

static int append_frame(void *user, int index, const uint8_t *bgr, int w, int h, ls_err *err) {
    (void)index;
    block *b = user;
    size_t n = (size_t)w * h * 3;
    if (b->max && b->used + n > b->max)
        return ls_fail(err, LS_ENOMEM, "%s: frames exceed the %zu-byte limit", b->path, b->max);
    if (b->used + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : n * 16;
        if (cap < b->used + n) cap = b->used + n;
        if (b->max && cap > b->max) cap = b->max;
        uint8_t *p = realloc(b->data, cap);
        if (!p) return ls_fail(err, LS_ENOMEM, "%s: out of memory for %zu bytes", b->path, cap);
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->used, bgr, n);
    b->used += n;
    return 0;
}

uint8_t *media_video_read_all(const char *path, size_t max_bytes, media_video_info *info,
                              ls_err *err) {
    block b = {.max = max_bytes, .path = path};
    media_video_info tmp;
    if (media_video_decode(path, append_frame, &b, info ? info : &tmp, err) != 0) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
