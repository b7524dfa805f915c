/* fuzz_requests.c - libFuzzer target: arbitrary bytes through lipsyncd's request decoding and
 * validation, for every request message of both APIs.
 *
 * Input: byte 0 picks the message (KINDS below, modulo their count) and, in its top bit, a tiny
 * arena (the server's "request too large to decode" path); the rest is the serialized message.
 * Each input is decoded twice:
 *   - as the server does it: srv_request_unpack (request.c) over a worker-style arena through the
 *     transport's protobuf-c allocator, then the API's checks (validate.h);
 *   - with protobuf-c's malloc allocator, so ASan sees the exact bounds of every decoded field,
 *     and the same checks run on that copy.
 * Properties (a violation aborts, which libFuzzer reports as a crash):
 *   - both decodings agree (both fail, or both succeed and re-pack to the same bytes), unless the
 *     tiny arena made the server's fail with RESOURCE_EXHAUSTED;
 *   - a failed decoding is INVALID_ARGUMENT or RESOURCE_EXHAUSTED with a message; a failed check
 *     is LS_EINVAL with a message; both copies give the same verdict and message;
 *   - an accepted request is within the documented limits (validate.h, docs/api.md).
 * No global mutable state beyond the arena made once in LLVMFuzzerInitialize. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "infer/ort_model.h"
#include "pipeline/clip.h"
#include "server/server_internal.h"
#include "server/validate.h"

#define ARENA_BYTES (8u << 20)  /* room for any input libFuzzer makes (-max_len) twice over */
#define TINY_ARENA 256
#define MAX_AUDIO_SECONDS 60.0
#define DEFAULT_QUALITY 75

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_requests: property failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

typedef enum {
    K_RENDER, K_COMPOSITE, K_LOAD_AVATAR, K_UNLOAD_AVATAR, K_LIST_AVATARS, K_GET_STATS,
    K_LOAD_MODEL, K_UNLOAD_MODEL, K_LIST_MODELS, K_MODEL_STATS, K_MONO_HEALTH, K_HEALTH_CHECK,
    K_FLOATS, K_COUNT
} kind;

static const ProtobufCMessageDescriptor *const DESCS[K_COUNT] = {
    [K_RENDER] = &lipsync__v1__render_request__descriptor,
    [K_COMPOSITE] = &monolithic__composite_batch_request__descriptor,
    [K_LOAD_AVATAR] = &lipsync__v1__load_avatar_request__descriptor,
    [K_UNLOAD_AVATAR] = &lipsync__v1__unload_avatar_request__descriptor,
    [K_LIST_AVATARS] = &lipsync__v1__list_avatars_request__descriptor,
    [K_GET_STATS] = &lipsync__v1__get_stats_request__descriptor,
    [K_LOAD_MODEL] = &monolithic__load_model_request__descriptor,
    [K_UNLOAD_MODEL] = &monolithic__unload_model_request__descriptor,
    [K_LIST_MODELS] = &monolithic__list_models_request__descriptor,
    [K_MODEL_STATS] = &monolithic__get_model_stats_request__descriptor,
    [K_MONO_HEALTH] = &monolithic__health_request__descriptor,
    [K_HEALTH_CHECK] = &grpc__health__v1__health_check_request__descriptor,
    [K_FLOATS] = NULL, /* raw bytes straight into val_finite_f32 */
};

static srv_worker g_worker; /* the worker-style arena, made once */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (arena_init(&g_worker.arena, ARENA_BYTES)) abort();
    srv_worker_alloc_init(&g_worker);
    return 0;
}

static void check_id(const char *id, int rc, const ls_err *err) {
    if (rc) {
        CHECK(err->code == LS_EINVAL && err->msg[0]);
        return;
    }
    size_t n = strlen(id);
    CHECK(n >= 1 && n <= VAL_ID_MAX);
    CHECK(!strchr(id, '/') && strcmp(id, ".") && strcmp(id, ".."));
}

/* The checks of one decoded message; returns the verdict, err says why. */
static int validate(kind k, const ProtobufCMessage *m, ls_err *err) {
    val_limits lim = {.max_audio_seconds = MAX_AUDIO_SECONDS};
    int rc = 0;
    switch (k) {
    case K_RENDER: {
        val_render v;
        rc = val_render_request((const Lipsync__V1__RenderRequest *)m, &lim, DEFAULT_QUALITY, &v, err);
        if (rc) break;
        size_t ss = v.format == PCM_S16LE ? 2 : 4;
        CHECK(v.format == PCM_S16LE || v.format == PCM_F32LE);
        CHECK(v.audio_bytes > 0 && v.audio_bytes % ss == 0);
        CHECK(v.sample_rate >= PCM_MIN_RATE && v.sample_rate <= PCM_MAX_RATE);
        CHECK((double)(v.audio_bytes / ss) / v.sample_rate <= MAX_AUDIO_SECONDS);
        CHECK(v.samples_16k == pcm_output_bound(v.audio_bytes / ss, v.sample_rate));
        CHECK(v.clip_frames >= 1 && v.clip_frames == pipe_clip_frames(v.samples_16k));
        CHECK(v.frames >= 1 && v.frames <= v.clip_frames);
        CHECK(v.first_frame >= 0);
        CHECK(v.output >= VAL_OUT_JPEG && v.output <= VAL_OUT_FACE_PATCH);
        CHECK(v.jpeg_quality >= 1 && v.jpeg_quality <= 100);
        check_id(v.avatar_id, 0, err);
        break;
    }
    case K_COMPOSITE: {
        val_composite v;
        const Monolithic__CompositeBatchRequest *in = (const Monolithic__CompositeBatchRequest *)m;
        rc = val_composite_request(in, &lim, &v, err);
        if (rc) break;
        check_id(v.model_id, 0, err);
        CHECK(v.batch >= 1 && v.batch <= VAL_COMPOSITE_MAX_BATCH && v.start_frame >= 0);
        CHECK(!v.visual || in->visual_frames.len == (size_t)v.batch * ORT_UNET_IMG_ELEMS * 4);
        if (v.features) {
            CHECK(in->audio_features.len == (size_t)v.batch * ORT_UNET_AUDIO_ELEMS * 4);
        } else {
            CHECK(v.audio && v.audio_bytes > 0 && v.audio_bytes % 4 == 0);
            CHECK(v.sample_rate >= PCM_MIN_RATE && v.sample_rate <= PCM_MAX_RATE);
            /* The Go API pads audio shorter than one mel window with silence (docs/api.md). */
            size_t n16 = pcm_output_bound(v.audio_bytes / 4, v.sample_rate);
            if (n16 < PIPE_CLIP_MIN_SAMPLES) n16 = PIPE_CLIP_MIN_SAMPLES;
            CHECK(v.clip_frames >= 1 && v.samples_16k == n16);
        }
        break;
    }
    case K_LOAD_AVATAR: {
        const char *id = ((const Lipsync__V1__LoadAvatarRequest *)m)->avatar_id;
        check_id(id, rc = val_avatar_id(id, err), err);
        break;
    }
    case K_UNLOAD_AVATAR: {
        const char *id = ((const Lipsync__V1__UnloadAvatarRequest *)m)->avatar_id;
        check_id(id, rc = val_avatar_id(id, err), err);
        break;
    }
    case K_LOAD_MODEL: {
        const char *id = ((const Monolithic__LoadModelRequest *)m)->model_id;
        check_id(id, rc = val_avatar_id(id, err), err);
        break;
    }
    case K_UNLOAD_MODEL: {
        const char *id = ((const Monolithic__UnloadModelRequest *)m)->model_id;
        check_id(id, rc = val_avatar_id(id, err), err);
        break;
    }
    default: break; /* no fields to check */
    }
    if (rc) CHECK(err->code == LS_EINVAL && err->msg[0]);
    return rc;
}

static void fuzz_floats(const uint8_t *data, size_t len) {
    ls_err err = {0};
    if (len < 4) return;
    float max_abs;
    memcpy(&max_abs, data, 4);
    int rc = val_finite_f32(data + 4, (len - 4) / 4, max_abs, "fuzz", &err);
    if (rc) CHECK(err.code == LS_EINVAL && err.msg[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    if (len < 1) return 0;
    kind k = (kind)((data[0] & 0x7f) % K_COUNT);
    int tiny = data[0] >> 7;
    data++, len--;
    if (k == K_FLOATS) {
        fuzz_floats(data, len);
        return 0;
    }
    const ProtobufCMessageDescriptor *desc = DESCS[k];

    /* The server's path: the request copied into the worker arena, unpacked over it. */
    ls_arena *arena = &g_worker.arena;
    arena_reset(arena);
    size_t cap = arena->cap;
    if (tiny) arena->cap = TINY_ARENA;
    uint8_t *copy = arena_alloc(arena, len ? len : 1, 64);
    srv_request req = {.data = copy, .len = len, .arena = arena, .pb_alloc = &g_worker.alloc,
                       .method = desc->name, .peer = "fuzz", .worker_index = 0};
    srv_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = GRPC_STATUS_OK;
    ProtobufCMessage *srv_msg = NULL;
    if (copy) {
        memcpy(copy, data, len);
        srv_msg = srv_request_unpack(&req, desc, &resp);
        if (!srv_msg) {
            CHECK(resp.status == GRPC_STATUS_INVALID_ARGUMENT || resp.status == GRPC_STATUS_RESOURCE_EXHAUSTED);
            CHECK(resp.message[0]);
        }
    }

    /* The reference decoding: malloc, exact ASan bounds. */
    ProtobufCMessage *ref = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!tiny) CHECK(!srv_msg == !ref);
    else CHECK(ref || !srv_msg);
    if (srv_msg) {
        CHECK(resp.status == GRPC_STATUS_OK);
        size_t n = protobuf_c_message_get_packed_size(srv_msg);
        CHECK(n == protobuf_c_message_get_packed_size(ref));
        uint8_t *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
        CHECK(a && b);
        CHECK(protobuf_c_message_pack(srv_msg, a) == n && protobuf_c_message_pack(ref, b) == n);
        CHECK(!memcmp(a, b, n));
        free(a);
        free(b);
        ls_err e1 = {0}, e2 = {0};
        int r1 = validate(k, srv_msg, &e1), r2 = validate(k, ref, &e2);
        CHECK(r1 == r2 && e1.code == e2.code && !strcmp(e1.msg, e2.msg));
    } else if (ref) {
        ls_err e = {0};
        validate(k, ref, &e);
    }
    if (ref) protobuf_c_message_free_unpacked(ref, NULL);
    arena->cap = cap;
    return 0;
}
