/* video_in.h - decode any video FFmpeg can read into packed BGR24 frames.
 *
 * Frames come out in presentation order, converted with libswscale to BGR24 rows of 3*width bytes
 * with no padding (the layout of an OpenCV BGR image). Every frame must have the first frame's size.
 * media_video_decode hands each frame to a callback (no frame memory kept); media_video_read_all
 * returns all frames in one malloc'd block that the caller frees with free(). Both allocate FFmpeg
 * state while running and free it before returning. Errors: LS_ENOTFOUND (no such file), LS_EFORMAT
 * (not a video, no video stream, corrupt data, size changes), LS_ENOMEM, or the callback's own. */
#ifndef LS_MEDIA_VIDEO_IN_H
#define LS_MEDIA_VIDEO_IN_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MEDIA_MAX_DIM 8192 /* larger frames are rejected as hostile */

typedef struct media_video_info {
    int width, height;
    double fps;      /* the stream's frame rate as FFmpeg guesses it; 0 when unknown */
    int frame_count; /* frames delivered (after decoding) */
} media_video_info;

/* Called once per decoded frame; `bgr` is valid only during the call. Return 0 to go on, -1 to
 * stop (after filling err; media_video_decode then returns -1 with that error). */
typedef int (*media_frame_fn)(void *user, int index, const uint8_t *bgr, int width, int height,
                              ls_err *err);

/* Decodes every frame of `path`. `info` (may be NULL) receives size, fps and frames delivered.
 * Returns 0, or -1 with err filled. A stream with zero decodable frames is an error. */
int media_video_decode(const char *path, media_frame_fn fn, void *user, media_video_info *info,
                       ls_err *err);

/* Decodes every frame into one block of frame_count*height*width*3 bytes (frame i at offset
 * i*height*width*3), caller frees. max_bytes > 0 caps the block (LS_ENOMEM past it). */
uint8_t *media_video_read_all(const char *path, size_t max_bytes, media_video_info *info,
                              ls_err *err);

/* Limits FFmpeg's own logging (process-wide state inside FFmpeg) to real errors, hiding its
 * informational chatter (encoder banners, format-range notes). Call once from a program's main. */
void media_quiet_ffmpeg_logs(void);

#endif
