/* validate.c - request checks of both APIs (validate.h). */
#include "server/validate.h"

#include <math.h>
#include <string.h>

#include "infer/ort_model.h"
#include "pipeline/clip.h"

int val_avatar_id(const char *id, ls_err *err) {
    size_t n = id ? strnlen(id, VAL_ID_MAX + 1) : 0;
    if (n < 1 || n > VAL_ID_MAX)
        return ls_fail(err, LS_EINVAL, "avatar id must be 1..%d characters of [A-Za-z0-9_.-]", VAL_ID_MAX);
    if (strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
        return ls_fail(err, LS_EINVAL, "avatar id '%.64s' may only hold [A-Za-z0-9_.-]", id);
    if (!strcmp(id, ".") || !strcmp(id, ".."))
        return ls_fail(err, LS_EINVAL, "avatar id '%s' is not a name", id);
    return 0;
}

int val_finite_f32(const uint8_t *bytes, size_t n_floats, float max_abs, const char *what, ls_err *err) {
    for (size_t i = 0; i < n_floats; i++) {
        float v;
        memcpy(&v, bytes + 4 * i, 4);
        if (!isfinite(v)) return ls_fail(err, LS_EINVAL, "%s: value %zu is not finite", what, i);
        if (fabsf(v) > max_abs)
            return ls_fail(err, LS_EINVAL, "%s: value %zu (%g) exceeds %g in magnitude", what, i, v, max_abs);
    }
    return 0;
}

/* Shared by both APIs: byte count, rate, duration limit, and the 16 kHz length it gives. Audio
 * shorter than one frame's window is refused, or, with pad_short (the Go API, whose batches of
 * 1-4 frames always are), counted as padded with silence to PIPE_CLIP_MIN_SAMPLES. */
static int check_audio(size_t n_bytes, size_t sample_size, int rate, const val_limits *lim, int pad_short,
                       size_t *samples_16k, size_t *clip_frames, ls_err *err) {
    if (n_bytes == 0) return ls_fail(err, LS_EINVAL, "audio is empty");
    if (n_bytes % sample_size)
        return ls_fail(err, LS_EINVAL, "audio is %zu bytes, not a multiple of the %zu-byte sample", n_bytes,
                       sample_size);
    if (rate < PCM_MIN_RATE || rate > PCM_MAX_RATE)
        return ls_fail(err, LS_EINVAL, "sample rate %d Hz outside %d..%d", rate, PCM_MIN_RATE, PCM_MAX_RATE);
    size_t n = n_bytes / sample_size;
    double secs = (double)n / rate;
    if (secs > lim->max_audio_seconds)
        return ls_fail(err, LS_EINVAL, "audio is %.2f s, longer than the limit of %g s (max_audio_seconds)",
                       secs, lim->max_audio_seconds);
    *samples_16k = pcm_output_bound(n, rate);
    if (pad_short && *samples_16k < PIPE_CLIP_MIN_SAMPLES) *samples_16k = PIPE_CLIP_MIN_SAMPLES;
    *clip_frames = pipe_clip_frames(*samples_16k);
    if (*clip_frames == 0)
        return ls_fail(err, LS_EINVAL, "audio is %.3f s, too short for one video frame (0.19 s)", secs);
    return 0;
}

int val_render_request(const Lipsync__V1__RenderRequest *in, const val_limits *lim, int default_quality,
                       val_render *out, ls_err *err) {
    memset(out, 0, sizeof *out);
    if (val_avatar_id(in->avatar_id, err)) return -1;
    out->avatar_id = in->avatar_id;
    if (!in->audio) return ls_fail(err, LS_EINVAL, "audio is missing");
    const Lipsync__V1__Audio *a = in->audio;
    size_t sample_size;
    switch (a->encoding) {
    case LIPSYNC__V1__AUDIO_ENCODING__AUDIO_ENCODING_S16LE: out->format = PCM_S16LE; sample_size = 2; break;
    case LIPSYNC__V1__AUDIO_ENCODING__AUDIO_ENCODING_F32LE: out->format = PCM_F32LE; sample_size = 4; break;
    default: return ls_fail(err, LS_EINVAL, "audio encoding %d: expected S16LE or F32LE", (int)a->encoding);
    }
    if (check_audio(a->data.len, sample_size, a->sample_rate, lim, 0, &out->samples_16k, &out->clip_frames, err))
        return -1;
    if (out->format == PCM_F32LE && val_finite_f32(a->data.data, a->data.len / 4, PCM_MAX_ABS, "audio", err))
        return -1;
    out->audio = a->data.data;
    out->audio_bytes = a->data.len;
    out->sample_rate = a->sample_rate;
    if (in->first_frame_index < 0)
        return ls_fail(err, LS_EINVAL, "first_frame_index %lld is negative", (long long)in->first_frame_index);
    out->first_frame = in->first_frame_index;
    if ((int)in->output < 0 || (int)in->output > 2)
        return ls_fail(err, LS_EINVAL, "output kind %d: expected JPEG, RAW_RGB24 or FACE_PATCH", (int)in->output);
    out->output = (val_output)in->output;
    if (in->jpeg_quality < 0 || in->jpeg_quality > 100)
        return ls_fail(err, LS_EINVAL, "jpeg_quality %d outside 0..100 (0 = server default)", in->jpeg_quality);
    out->jpeg_quality = in->jpeg_quality ? in->jpeg_quality : default_quality;
    if (in->max_frames < 0) return ls_fail(err, LS_EINVAL, "max_frames %d is negative", in->max_frames);
    out->frames = in->max_frames && (size_t)in->max_frames < out->clip_frames ? (size_t)in->max_frames
                                                                             : out->clip_frames;
    return 0;
}

int val_composite_request(const Monolithic__CompositeBatchRequest *in, const val_limits *lim,
                          val_composite *out, ls_err *err) {
    memset(out, 0, sizeof *out);
    if (val_avatar_id(in->model_id, err)) return ls_wrap(err, "model_id");
    out->model_id = in->model_id;
    if (in->batch_size < 1 || in->batch_size > VAL_COMPOSITE_MAX_BATCH)
        return ls_fail(err, LS_EINVAL, "batch_size %d outside 1..%d", in->batch_size, VAL_COMPOSITE_MAX_BATCH);
    out->batch = in->batch_size;
    if (in->start_frame_idx < 0)
        return ls_fail(err, LS_EINVAL, "start_frame_idx %d is negative", in->start_frame_idx);
    out->start_frame = in->start_frame_idx;
    size_t batch = (size_t)out->batch;
    if (in->visual_frames.len) {
        size_t want = batch * ORT_UNET_IMG_ELEMS * 4;
        if (in->visual_frames.len != want)
            return ls_fail(err, LS_EINVAL, "visual_frames is %zu bytes; batch_size %d needs %zu (%d x 6 x 320 x 320 float32)",
                           in->visual_frames.len, out->batch, want, out->batch);
        /* The reference's inputs are pixels / 255; allow some headroom, refuse garbage. */
        if (val_finite_f32(in->visual_frames.data, batch * ORT_UNET_IMG_ELEMS, 1e6f, "visual_frames", err))
            return -1;
        out->visual = in->visual_frames.data;
    }
    if (in->audio_features.len) {
        size_t want = batch * ORT_UNET_AUDIO_ELEMS * 4;
        if (in->audio_features.len != want)
            return ls_fail(err, LS_EINVAL, "audio_features is %zu bytes; batch_size %d needs %zu (%d x 32 x 16 x 16 float32)",
                           in->audio_features.len, out->batch, want, out->batch);
        if (val_finite_f32(in->audio_features.data, batch * ORT_UNET_AUDIO_ELEMS, 1e6f, "audio_features", err))
            return -1;
        out->features = in->audio_features.data;
        return 0; /* raw_audio is not used */
    }
    if (!in->raw_audio.len) return ls_fail(err, LS_EINVAL, "raw_audio is empty (and no audio_features given)");
    out->sample_rate = in->sample_rate ? in->sample_rate : PCM_RATE;
    if (check_audio(in->raw_audio.len, 4, out->sample_rate, lim, 1, &out->samples_16k, &out->clip_frames, err))
        return ls_wrap(err, "raw_audio");
    if (val_finite_f32(in->raw_audio.data, in->raw_audio.len / 4, PCM_MAX_ABS, "raw_audio", err)) return -1;
    out->audio = in->raw_audio.data;
    out->audio_bytes = in->raw_audio.len;
    return 0;
}
