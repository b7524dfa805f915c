/* client_sink.c - decode received JPEG frames and feed the MP4 writer. */
#include "client/client_sink.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/imgfile.h"
#include "media/video_out.h"

struct cli_sink {
    char *path;
    const float *audio;
    size_t audio_samples;
    media_writer *writer; /* opened at the first frame, when the size is known */
    int width, height;
    size_t frames;
};

cli_sink *cli_sink_open(const char *path, const float *audio, size_t audio_samples, ls_err *err) {
    cli_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        ls_fail(err, LS_ENOMEM, "out of memory");
        return NULL;
    }
    s->audio = audio;
    s->audio_samples = audio ? audio_samples : 0;
    return s;
}

int cli_sink_add_jpeg(cli_sink *s, const void *jpeg, size_t len, ls_err *err) {
    int w, h;
    uint8_t *bgr = img_decode_bgr(jpeg, len, &w, &h, err);
    if (!bgr) return ls_wrap(err, "frame %zu from the server", s->frames);
    int rc = 0;
    if (!s->writer) {
        media_writer_cfg cfg = {.width = w, .height = h, .fps = CLI_FPS, .codec = MEDIA_CODEC_AUTO,
                                .audio = s->audio_samples ? s->audio : NULL,
                                .audio_samples = s->audio_samples, .audio_rate = 16000};
        if (!(s->writer = media_writer_open(s->path, &cfg, err))) rc = -1;
        s->width = w;
        s->height = h;
    } else if (w != s->width || h != s->height) {
        rc = ls_fail(err, LS_EFORMAT, "frame %zu from the server is %dx%d, earlier ones %dx%d",
                     s->frames, w, h, s->width, s->height);
    }
    if (rc == 0) rc = media_writer_write(s->writer, bgr, err);
    free(bgr);
    if (rc == 0) s->frames++;
    return rc;
}

int cli_sink_close(cli_sink *s, ls_err *err) {
    if (!s) return ls_fail(err, LS_EINVAL, "no sink");
    int rc;
    if (!s->writer) {
        rc = ls_fail(err, LS_EFORMAT, "no frames to write to %s", s->path);
    } else {
        rc = media_writer_close(s->writer, err); /* frees the writer, also on error */
        s->writer = NULL;
    }
    free(s->path);
    free(s);
    return rc;
}

void cli_sink_abort(cli_sink *s) {
    if (!s) return;
    media_writer_abort(s->writer);
    free(s->path);
    free(s);
}

size_t cli_sink_frames(const cli_sink *s, int *width, int *height) {
    if (width) *width = s->width;
    if (height) *height = s->height;
    return s->frames;
}
