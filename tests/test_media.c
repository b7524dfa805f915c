/* test_media.c - the MP4 writer checked with ffprobe, and decoding back with video_in. */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "avatar_fixture.h"
#include "check.h"
#include "media/video_in.h"
#include "media/video_out.h"

typedef struct probed {
    char codec[32];
    int width, height, frames;
    double duration;
} probed;

/* Runs ffprobe on path; fills up to 4 streams (video/audio order as in the file); returns count. */
static int probe(const char *path, probed *s, double *format_duration) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -count_frames -show_entries "
             "stream=codec_name,width,height,nb_read_frames,duration:format=duration -of json '%s'",
             path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    if (pclose(p) != 0) return -1;
    cJSON *root = cJSON_Parse(out);
    const cJSON *streams = cJSON_GetObjectItem(root, "streams"), *st;
    int count = 0;
    cJSON_ArrayForEach(st, streams) {
        if (count == 4) break;
        probed *q = &s[count++];
        memset(q, 0, sizeof *q);
        const cJSON *v;
        if ((v = cJSON_GetObjectItem(st, "codec_name"))) snprintf(q->codec, sizeof q->codec, "%s", v->valuestring);
        if ((v = cJSON_GetObjectItem(st, "width"))) q->width = v->valueint;
        if ((v = cJSON_GetObjectItem(st, "height"))) q->height = v->valueint;
        if ((v = cJSON_GetObjectItem(st, "nb_read_frames"))) q->frames = atoi(v->valuestring);
        if ((v = cJSON_GetObjectItem(st, "duration"))) q->duration = atof(v->valuestring);
    }
    const cJSON *fmt = cJSON_GetObjectItem(root, "format");
    const cJSON *d = fmt ? cJSON_GetObjectItem(fmt, "duration") : NULL;
    *format_duration = d ? atof(d->valuestring) : -1;
    cJSON_Delete(root);
    return count;
}

/* Writes n pattern frames of w x h with `samples` of a 220 Hz tone at 16 kHz (0: no audio). */
static int write_clip(const char *path, int w, int h, int n, media_codec codec, size_t samples, ls_err *err) {
    float *pcm = samples ? malloc(samples * sizeof *pcm) : NULL;
    for (size_t i = 0; i < samples; i++) pcm[i] = 0.3f * sinf(2.0f * 3.14159265f * 220.0f * (float)i / 16000.0f);
    media_writer_cfg cfg = {.width = w, .height = h, .fps = 0 /* default 25 */, .codec = codec,
                            .audio = pcm, .audio_samples = samples, .audio_rate = 16000};
    media_writer *mw = media_writer_open(path, &cfg, err);
    free(pcm); /* the writer copied it */
    if (!mw) return -1;
    unsigned char *bgr = malloc((size_t)w * h * 3);
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        fx_pattern(bgr, w, h, i);
        rc = media_writer_write(mw, bgr, err);
    }
    free(bgr);
    if (rc) {
        media_writer_abort(mw);
        return -1;
    }
    return media_writer_close(mw, err);
}

/* One AAC frame (1024 samples at 16 kHz = 64 ms) is the audio's timing granularity. */
#define AUDIO_TOL 0.065

TEST(h264_with_longer_audio_is_trimmed_to_the_video) {
    char *dir = fx_tempdir("media"), *path = fx_path(dir, "a.mp4");
    ls_err err = {0};
    CHECK(write_clip(path, 160, 120, 50, MEDIA_CODEC_AUTO, 48000, &err) == 0, "%s", err.msg); /* 3 s audio, 2 s video */
    probed s[4];
    double dur;
    CHECK(probe(path, s, &dur) == 2, "two streams");
    CHECK(!strcmp(s[0].codec, strcmp(media_writer_auto_codec(), "libx264") ? "mjpeg" : "h264"), "video codec %s", s[0].codec);
    CHECK(s[0].width == 160 && s[0].height == 120, "size %dx%d", s[0].width, s[0].height);
    CHECK(s[0].frames == 50, "50 video frames, got %d", s[0].frames);
    CHECK_NEAR(s[0].duration, 2.0, 1e-6, "video duration = 50 / 25 s");
    CHECK(!strcmp(s[1].codec, "aac"), "audio codec %s", s[1].codec);
    CHECK_NEAR(s[1].duration, 2.0, AUDIO_TOL, "audio trimmed to the video's 2 s");
    CHECK_NEAR(dur, 2.0, AUDIO_TOL, "file duration");
    free(path);
    fx_rmtree(dir);
}

TEST(short_audio_is_padded_to_the_video) {
    char *dir = fx_tempdir("media"), *path = fx_path(dir, "a.mp4");
    ls_err err = {0};
    CHECK(write_clip(path, 96, 64, 50, MEDIA_CODEC_AUTO, 8000, &err) == 0, "%s", err.msg); /* 0.5 s audio */
    probed s[4];
    double dur;
    CHECK(probe(path, s, &dur) == 2, "two streams");
    CHECK_NEAR(s[1].duration, 2.0, AUDIO_TOL, "audio padded with silence to 2 s");
    free(path);
    fx_rmtree(dir);
}

TEST(mjpeg_without_audio_has_one_stream) {
    char *dir = fx_tempdir("media"), *path = fx_path(dir, "m.mp4");
    ls_err err = {0};
    CHECK(write_clip(path, 64, 48, 7, MEDIA_CODEC_MJPEG, 0, &err) == 0, "%s", err.msg);
    probed s[4];
    double dur;
    CHECK(probe(path, s, &dur) == 1, "one stream");
    CHECK(!strcmp(s[0].codec, "mjpeg") && s[0].frames == 7, "mjpeg, 7 frames: %s %d", s[0].codec, s[0].frames);
    CHECK_NEAR(s[0].duration, 7 / 25.0, 1e-6, "duration 0.28 s");
    free(path);
    fx_rmtree(dir);
}

TEST(odd_sizes_are_padded_to_even_and_decode_back) {
    char *dir = fx_tempdir("media"), *path = fx_path(dir, "odd.mp4");
    ls_err err = {0};
    CHECK(write_clip(path, 65, 49, 5, MEDIA_CODEC_AUTO, 0, &err) == 0, "%s", err.msg);
    media_video_info info;
    uint8_t *frames = media_video_read_all(path, 0, &info, &err);
    CHECK(frames, "%s", err.msg);
    CHECK(info.width == 66 && info.height == 50 && info.frame_count == 5, "66x50 x5, got %dx%d x%d",
          info.width, info.height, info.frame_count);
    CHECK_NEAR(info.fps, 25.0, 1e-9, "fps");
    /* Frame 3's pattern: B = 70, G = x, R = y; H.264 CRF 20 on this smooth image: within 12. The
     * padding column 65 repeats column 64 and row 49 repeats row 48. */
    const uint8_t *f = frames + (size_t)3 * 66 * 50 * 3;
    for (int y = 0; y < 50; y++)
        for (int x = 0; x < 66; x++) {
            const uint8_t *p = f + ((size_t)y * 66 + x) * 3;
            int ex = x < 65 ? x : 64, ey = y < 49 ? y : 48;
            CHECK(abs(p[0] - 70) <= 12 && abs(p[1] - ex) <= 12 && abs(p[2] - ey) <= 12,
                  "(%d,%d) = %d %d %d, want 70 %d %d", x, y, p[0], p[1], p[2], ex, ey);
        }
    free(frames);
    free(path);
    fx_rmtree(dir);
}

TEST(writer_rejects_bad_arguments_cleanly) {
    ls_err err = {0};
    media_writer_cfg cfg = {.width = 0, .height = 48, .fps = 25};
    CHECK(!media_writer_open("/tmp/x.mp4", &cfg, &err) && err.code == LS_EINVAL, "zero width");
    cfg.width = 64;
    cfg.fps = -1;
    CHECK(!media_writer_open("/tmp/x.mp4", &cfg, &err) && err.code == LS_EINVAL, "fps -1");
    cfg.fps = 241;
    CHECK(!media_writer_open("/tmp/x.mp4", &cfg, &err) && err.code == LS_EINVAL, "fps 241");
    cfg.fps = 25;
    float pcm[4] = {0, NAN, 0, 0};
    cfg.audio = pcm, cfg.audio_samples = 4, cfg.audio_rate = 16000;
    CHECK(!media_writer_open("/tmp/x.mp4", &cfg, &err) && err.code == LS_EINVAL &&
              strstr(err.msg, "sample 1"), "NaN audio: %s", err.msg);
    cfg.audio = NULL, cfg.audio_samples = 0;
    CHECK(!media_writer_open("/nonexistent/dir/x.mp4", &cfg, &err) && err.code == LS_EIO, "unwritable: %s", err.msg);
}

TEST(reader_reports_missing_and_corrupt_files) {
    ls_err err = {0};
    media_video_info info;
    CHECK(!media_video_read_all("/nonexistent.mp4", 0, &info, &err) && err.code == LS_ENOTFOUND, "missing: %s", err.msg);
    char *dir = fx_tempdir("media"), *path = fx_path(dir, "junk.mp4");
    fx_text(path, "this is not a video at all, just some text pretending to be one\n");
    CHECK(!media_video_read_all(path, 0, &info, &err) && err.code == LS_EFORMAT, "junk: %s", err.msg);
    free(path);
    fx_rmtree(dir);
}

TEST(reader_respects_a_memory_cap) {
    char *dir = fx_tempdir("media"), *path = fx_path(dir, "c.mp4");
    ls_err err = {0};
    CHECK(write_clip(path, 64, 48, 10, MEDIA_CODEC_MJPEG, 0, &err) == 0, "%s", err.msg);
    media_video_info info;
    CHECK(!media_video_read_all(path, 5 * 64 * 48 * 3, &info, &err) && err.code == LS_ENOMEM, "cap: %s", err.msg);
    uint8_t *all = media_video_read_all(path, 10 * 64 * 48 * 3, &info, &err);
    CHECK(all && info.frame_count == 10, "exactly fits: %s", err.msg);
    free(all);
    free(path);
    fx_rmtree(dir);
}

int main(void) {
    media_quiet_ffmpeg_logs();
    RUN(h264_with_longer_audio_is_trimmed_to_the_video);
    RUN(short_audio_is_padded_to_the_video);
    RUN(mjpeg_without_audio_has_one_stream);
    RUN(odd_sizes_are_padded_to_even_and_decode_back);
    RUN(writer_rejects_bad_arguments_cleanly);
    RUN(reader_reports_missing_and_corrupt_files);
    RUN(reader_respects_a_memory_cap);
    return check_summary();
}
