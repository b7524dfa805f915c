/* client_render.c - builds Render / InferBatchComposite requests from 16 kHz float audio, calls
 * lipsyncd and checks the frames that come back. */
#include "client/client_render.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/features.h"
#include "audio/mel.h"
#include "client/client_msg.h"
#include "lipsync/v1/lipsync.pb-c.h"
#include "monolithic.pb-c.h"

#define CLI_MAX_COMPAT_BATCH 32

size_t cli_clip_frames(size_t n_samples) {
    return feat_frame_count(mel_frame_count(n_samples));
}

void cli_chunk_audio(cli_api api, size_t n_samples, size_t k, size_t count, size_t *begin,
                     size_t *end) {
    size_t b = k * CLI_SAMPLES_PER_FRAME;
    size_t e = (k + count) * CLI_SAMPLES_PER_FRAME + (api == CLI_API_V1 ? CLI_V1_TAIL_SAMPLES : 0);
    *begin = b < n_samples ? b : n_samples;
    *end = e < n_samples ? e : n_samples;
}

/* Float samples as float32 little-endian bytes (the wire format of both APIs), whatever the host
 * byte order; rejects NaN/Inf before the server has to. Returns a malloc'd buffer of 4*n bytes. */
static uint8_t *f32le_bytes(const float *pcm, size_t n, ls_err *err) {
    if (n == 0) {
        ls_fail(err, LS_EINVAL, "no audio samples to send");
        return NULL;
    }
    uint8_t *out = malloc(n * 4);
    if (!out) {
        ls_fail(err, LS_ENOMEM, "out of memory for %zu audio samples", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(pcm[i])) {
            free(out);
            ls_fail(err, LS_EINVAL, "audio sample %zu is not finite", i);
            return NULL;
        }
        uint32_t u;
        memcpy(&u, &pcm[i], 4);
        out[4 * i] = (uint8_t)u;
        out[4 * i + 1] = (uint8_t)(u >> 8);
        out[4 * i + 2] = (uint8_t)(u >> 16);
        out[4 * i + 3] = (uint8_t)(u >> 24);
    }
    return out;
}

void cli_frames_free(cli_frames *f) {
    if (!f) return;
    free(f->jpeg);
    if (f->msg) protobuf_c_message_free_unpacked(f->msg, NULL);
    *f = (cli_frames){.status = f->status};
}

int cli_render_v1(cli_conn *c, const char *avatar, const float *pcm, size_t n, long long first_frame,
                  int max_frames, cli_frames *out, ls_err *err) {
    *out = (cli_frames){.status = CLI_STATUS_LOCAL};
    if (first_frame < 0 || max_frames < 0)
        return ls_fail(err, LS_EINVAL, "first frame and frame limit must be >= 0");
    uint8_t *bytes = f32le_bytes(pcm, n, err);
    if (!bytes) return -1;
    Lipsync__V1__Audio audio = LIPSYNC__V1__AUDIO__INIT;
    audio.data = (ProtobufCBinaryData){.len = n * 4, .data = bytes};
    audio.encoding = LIPSYNC__V1__AUDIO_ENCODING__AUDIO_ENCODING_F32LE;
    audio.sample_rate = 16000;
    Lipsync__V1__RenderRequest req = LIPSYNC__V1__RENDER_REQUEST__INIT;
    req.avatar_id = (char *)avatar;
    req.audio = &audio;
    req.first_frame_index = first_frame;
    req.output = LIPSYNC__V1__OUTPUT_KIND__OUTPUT_KIND_JPEG;
    req.max_frames = max_frames;
    Lipsync__V1__RenderResponse *resp = (Lipsync__V1__RenderResponse *)cli_call_msg(
        c, "/lipsync.v1.LipSync/Render", &req.base, &lipsync__v1__render_response__descriptor,
        &out->status, &out->rpc_ms, err);
    free(bytes);
    if (!resp) return -1;
    out->msg = &resp->base;
    out->server_ms = resp->timings ? resp->timings->total_ms : 0;
    if (resp->n_frames == 0) {
        cli_frames_free(out);
        return ls_fail(err, LS_EFORMAT, "the server returned no frames");
    }
    if (max_frames > 0 && resp->n_frames > (size_t)max_frames) {
        cli_frames_free(out);
        return ls_fail(err, LS_EFORMAT, "asked for at most %d frames, got %zu", max_frames,
                       resp->n_frames);
    }
    if (!(out->jpeg = malloc(resp->n_frames * sizeof *out->jpeg))) {
        cli_frames_free(out);
        return ls_fail(err, LS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < resp->n_frames; i++) {
        const Lipsync__V1__Frame *f = resp->frames[i];
        if (f->index != first_frame + (long long)i) {
            long long got = f->index;
            cli_frames_free(out);
            return ls_fail(err, LS_EFORMAT, "frame %zu of the reply has index %lld, expected %lld",
                           i, got, first_frame + (long long)i);
        }
        out->jpeg[i] = f->data;
    }
    out->n = resp->n_frames;
    return 0;
}

int cli_render_compat(cli_conn *c, const char *model, const float *pcm, size_t n, int batch,
                      int start_frame, cli_frames *out, ls_err *err) {
    *out = (cli_frames){.status = CLI_STATUS_LOCAL};
    if (batch < 1 || batch > CLI_MAX_COMPAT_BATCH || start_frame < 0)
        return ls_fail(err, LS_EINVAL, "batch must be 1..%d and the start frame >= 0 (got %d, %d)",
                       CLI_MAX_COMPAT_BATCH, batch, start_frame);
    uint8_t *bytes = f32le_bytes(pcm, n, err);
    if (!bytes) return -1;
    Monolithic__CompositeBatchRequest req = MONOLITHIC__COMPOSITE_BATCH_REQUEST__INIT;
    req.model_id = (char *)model;
    req.raw_audio = (ProtobufCBinaryData){.len = n * 4, .data = bytes};
    req.batch_size = batch;
    req.start_frame_idx = start_frame;
    req.sample_rate = 16000;
    Monolithic__CompositeBatchResponse *resp = (Monolithic__CompositeBatchResponse *)cli_call_msg(
        c, "/monolithic.MonolithicService/InferBatchComposite", &req.base,
        &monolithic__composite_batch_response__descriptor, &out->status, &out->rpc_ms, err);
    free(bytes);
    if (!resp) return -1;
    out->msg = &resp->base;
    out->server_ms = resp->total_time_ms;
    if (!resp->success) {
        ls_fail(err, LS_EIO, "server error: %s", resp->error && *resp->error ? resp->error
                                                                           : "(no message)");
        cli_frames_free(out);
        return -1;
    }
    if (resp->n_composited_frames != (size_t)batch) {
        size_t got = resp->n_composited_frames;
        cli_frames_free(out);
        return ls_fail(err, LS_EFORMAT, "asked for %d frames, got %zu", batch, got);
    }
    if (!(out->jpeg = malloc((size_t)batch * sizeof *out->jpeg))) {
        cli_frames_free(out);
        return ls_fail(err, LS_ENOMEM, "out of memory");
    }
    memcpy(out->jpeg, resp->composited_frames, (size_t)batch * sizeof *out->jpeg);
    out->n = (size_t)batch;
    return 0;
}
