/* video_out.h - write BGR frames (and optionally mono float PCM) to an MP4 file.
 *
 * Video is H.264 (libx264, yuv420p, CRF 20, preset veryfast) when the FFmpeg build has libx264,
 * else MJPEG; odd widths/heights are padded to even by repeating the last column/row. Audio (when
 * given) is AAC from FFmpeg's native encoder, resampled with libswresample to its sample format,
 * interleaved with the video as frames arrive, and trimmed or zero-padded to the video duration
 * (frames / fps) at close. media_writer_open allocates everything (it copies the audio); writing a
 * frame allocates nothing in this module (frames and the packet are reused; the encoder and muxer
 * keep their own buffers). Errors: LS_EINVAL (bad sizes, fps, non-finite audio), LS_EIO (cannot
 * create/write the file), LS_EFORMAT (no usable encoder), LS_ENOMEM. Not thread-safe per writer. */
#ifndef LS_MEDIA_VIDEO_OUT_H
#define LS_MEDIA_VIDEO_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum {
    MEDIA_CODEC_AUTO = 0, /* H.264 when libx264 exists, else MJPEG */
    MEDIA_CODEC_H264,     /* libx264 or fail */
    MEDIA_CODEC_MJPEG
} media_codec;

typedef struct media_writer_cfg {
    int width, height;  /* 1..MEDIA_MAX_DIM */
    int fps;            /* frames per second, 1..240; 0 means 25 (lip-sync output) */
    media_codec codec;
    int crf;            /* H.264 quality; 0 means 20 */
    const float *audio; /* mono PCM in [-1, 1], or NULL for a video-only file; copied at open */
    size_t audio_samples;
    int audio_rate;     /* Hz of `audio` (16000 for lip-sync), 8000..192000 */
} media_writer_cfg;

typedef struct media_writer media_writer;

/* Creates `path` and writes the header. Returns NULL with err filled on failure. */
media_writer *media_writer_open(const char *path, const media_writer_cfg *cfg, ls_err *err);

/* Encodes one packed BGR24 frame (stride = 3*width bytes, the size given at open). */
int media_writer_write(media_writer *w, const uint8_t *bgr, ls_err *err);

/* Flushes the encoders, finishes the audio to the video's duration, writes the trailer and frees
 * the writer (always, also on error). Returns 0 or -1. */
int media_writer_close(media_writer *w, ls_err *err);

/* Frees without finishing the file (after an error); NULL is fine. */
void media_writer_abort(media_writer *w);

/* "libx264" or "mjpeg": what MEDIA_CODEC_AUTO picks in this FFmpeg build. */
const char *media_writer_auto_codec(void);

#endif
