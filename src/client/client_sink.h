/* client_sink.h - JPEG frames from lipsyncd, in order, into an MP4 with the request's audio.
 *
 * The video size is taken from the first frame (the writer is opened then); every later frame
 * must decode to the same size. Frames are decoded with img_decode_bgr (src/image/imgfile.h) and
 * encoded by media_writer (src/media/video_out.h) at 25 fps, the audio (16 kHz mono, copied at
 * open of the writer) muxed and trimmed/padded to the video length. Allocates per frame (decoded
 * image; client side). Errors: LS_EFORMAT (undecodable JPEG, size change, no frames at close),
 * plus the writer's. cli_sink_close and cli_sink_abort free the sink. */
#ifndef LS_CLIENT_SINK_H
#define LS_CLIENT_SINK_H

#include <stddef.h>

#include "common/err.h"

#define CLI_FPS 25

typedef struct cli_sink cli_sink;

/* audio (may be NULL) must stay valid until the first frame is added. */
cli_sink *cli_sink_open(const char *path, const float *audio, size_t audio_samples, ls_err *err);

/* Decodes one JPEG and appends it as the next video frame. */
int cli_sink_add_jpeg(cli_sink *s, const void *jpeg, size_t len, ls_err *err);

/* Finishes the file; LS_EFORMAT when no frame was added. Frees s. */
int cli_sink_close(cli_sink *s, ls_err *err);

/* Frees s without finishing the file (NULL is fine). */
void cli_sink_abort(cli_sink *s);

/* Frames added so far, and their size (0 x 0 before the first). */
size_t cli_sink_frames(const cli_sink *s, int *width, int *height);

#endif
