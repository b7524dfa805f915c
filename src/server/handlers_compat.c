/* handlers_compat.c - monolithic.MonolithicService, wire-compatible with the Go server: errors
 * in-band (success=false + error), each InferBatchComposite's audio a new clip, statistics from
 * the registry. Transport-level failures (cancel, deadline, overload) stay gRPC statuses. */
#include <stdint.h>
#include <string.h>

#include "audio/features.h"
#include "monolithic.pb-c.h"
#include "pipeline/clip.h"
#include "server/app_priv.h"


/* UNet audio block of frame i of a clip of L encoder rows, for any i. feat_window's rule (rows
 * i-8 .. i+7 of the L+2 edge-duplicated rows, zeros outside) extended past the clip's end,
 * where feat_window refuses: a batch longer than its audio gets the windows the rule gives there
 * (fewer and fewer real rows, all zeros from frame L+10 on), as the Go server's fixed-size batch
 * does. In range it is feat_window itself. */
static void compat_window(const float *rows, size_t L, size_t i, float *out) {
    if (i < L && feat_window(rows, L, i, out, NULL) == 0) return;
    for (size_t r = 0; r < FEAT_CONTEXT; r++) {
        long long j = (long long)i - FEAT_CONTEXT / 2 + (long long)r; /* duplicated row, 0..L+1 */
        float *dst = out + r * FEAT_ENC_DIM;
        if (j < 0 || j > (long long)L + 1) {
            memset(dst, 0, sizeof(float) * FEAT_ENC_DIM);
            continue;
        }
        long long src = j - 1 < 0 ? 0 : j - 1 > (long long)L - 1 ? (long long)L - 1 : j - 1;
        memcpy(dst, rows + (size_t)src * FEAT_ENC_DIM, sizeof(float) * FEAT_ENC_DIM);
    }
}

typedef struct compat_sink {
    srv_request *req;
    app_worker *w;
    pipe_jpeg_set *jpeg;     /* the avatar's backgrounds (lease) */
    int quality;
    ProtobufCBinaryData *frames;
    size_t n, bytes, max_bytes;
} compat_sink;

static int compat_sink_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    compat_sink *s = ctx;
    int why = srv_request_cancelled(s->req);
    if (why) return ls_fail(err, LS_ECANCELLED, "%s after %zu frames", why == 2 ? "deadline exceeded" : "cancelled", s->n);
    const uint8_t *jpg;
    size_t len;
    if (pipe_jpeg_encode(s->w->jpeg, s->jpeg, f, s->quality, &jpg, &len, err) != 0) return -1;
    uint8_t *data = len <= s->max_bytes - s->bytes ? arena_alloc(s->req->arena, len, 16) : NULL;
    if (!data) return ls_fail(err, LS_ENOMEM, "the reply would exceed the %zu MiB message limit", s->max_bytes >> 20);
    memcpy(data, jpg, len);
    s->bytes += len;
    s->frames[s->n++] = (ProtobufCBinaryData){.len = len, .data = data};
    return 0;
}

static int compat_sink_region(void *ctx, const pipe_frame *f, ls_box *need, ls_err *err) {
    compat_sink *s = ctx;
    return pipe_jpeg_region(s->jpeg, f, s->quality, need, err);
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* One batch with the avatar leased: 0 with out's frames and timings filled, or -1 with err. */
static int compat_render(app *a, srv_request *req, const val_composite *v, const reg_lease *lease,
                         Monolithic__CompositeBatchResponse *out, reg_use *use, ls_err *err) {
    app_worker *w = req->worker_state;
    size_t batch = (size_t)v->batch;
    uint64_t ta = pipe_now_ns();
    if (reg_bind_worker(a->reg, &w->held, lease, w->pw, err) != 0) return -1;
    if (v->features) {
        memcpy(w->audio_in, v->features, batch * ORT_UNET_AUDIO_ELEMS * sizeof(float));
    } else {
        size_t L;
        /* A batch of 1-4 frames carries less audio (640 samples a frame) than one mel window
         * needs; like any short clip it is padded with silence (docs/api.md). */
        if (app_clip_features(w, v->audio, v->audio_bytes, PCM_F32LE, v->sample_rate, PIPE_CLIP_MIN_SAMPLES,
                              &L, err) != 0)
            return -1;
        for (size_t i = 0; i < batch; i++) compat_window(w->feats, L, i, w->audio_in + i * ORT_UNET_AUDIO_ELEMS);
    }
    const float *image_in = NULL;
    if (v->visual) { /* protobuf-c's copy is 16-byte aligned in the arena; copy if it ever is not */
        if ((uintptr_t)v->visual % sizeof(float) == 0) {
            image_in = (const float *)(const void *)v->visual;
        } else {
            memcpy(w->image_in, v->visual, batch * ORT_UNET_IMG_ELEMS * sizeof(float));
            image_in = w->image_in;
        }
    }
    uint64_t audio_ns = pipe_now_ns() - ta;
    compat_sink s = {.req = req, .w = w, .jpeg = lease->jpeg, .quality = a->cfg->jpeg_quality, .max_bytes = a->cfg->max_message_size_mb * ((size_t)1 << 20) * 63 / 64,
                     .frames = arena_array(req->arena, ProtobufCBinaryData, batch)};
    if (!s.frames) return ls_fail(err, LS_ENOMEM, "worker arena exhausted");
    pipe_render_req rr = {.av = lease->av, .n_frames = batch, .first = 0, .count = batch,
                          .start_frame = v->start_frame, .image_in = image_in, .audio_in = w->audio_in,
                          .cancel = srv_request_cancel_flag(req), .prepared = lease->prepared,
                          .region = compat_sink_region};
    pipe_timings t = {0};
    if (pipe_render(w->pw, &rr, compat_sink_frame, &s, &t, err) != 0) return -1;
    out->n_composited_frames = s.n;
    out->composited_frames = s.frames;
    out->audio_processing_ms = (float)ms(audio_ns);
    out->inference_time_ms = (float)ms(t.unet_ns);
    out->composite_time_ms = (float)ms(t.prep_ns + t.paste_ns + t.sink_ns);
    use->frames = batch;
    use->infer_ns = t.unet_ns;
    return 0;
}

/* In-band failure, as the Go server answers. */
static int compat_fail_inband(srv_response *resp, Monolithic__CompositeBatchResponse *out, const ls_err *err) {
    out->success = false;
    out->error = (char *)err->msg;
    srv_response_note(resp, "inband_error=%s", ls_code_name(err->code));
    return srv_response_pack(resp, &out->base);
}

int app_compat_infer(void *ctx, srv_request *req, srv_response *resp) {
    app *a = ctx;
    uint64_t t0 = pipe_now_ns();
    Monolithic__CompositeBatchRequest *in = (Monolithic__CompositeBatchRequest *)srv_request_unpack(
        req, &monolithic__composite_batch_request__descriptor, resp);
    if (!in) return -1;
    Monolithic__CompositeBatchResponse out = MONOLITHIC__COMPOSITE_BATCH_RESPONSE__INIT;
    out.gpu_id = -1; /* the CPU, until the avatar is known */
    val_composite v;
    ls_err err = {0};
    reg_lease lease;
    srv_response_note(resp, "avatar=%.64s", in->model_id);
    if (val_composite_request(in, &a->lim, &v, &err) != 0 || reg_acquire(a->reg, v.model_id, &lease, &err) != 0)
        return compat_fail_inband(resp, &out, &err);
    out.gpu_id = reg_model_device(lease.unet);
    out.model_loaded = lease.loaded_now;
    out.model_load_time_ms = lease.loaded_now ? (float)lease.load_ms : 0.0f;
    reg_use use = {0};
    int rc = compat_render(a, req, &v, &lease, &out, &use, &err);
    use.render_ns = pipe_now_ns() - t0;
    reg_release(a->reg, &lease, &use);
    if (rc != 0)
        return err.code == LS_ECANCELLED ? app_fail(req, resp, &err) : compat_fail_inband(resp, &out, &err);
    out.success = true;
    out.error = "";
    out.total_time_ms = (float)ms(use.render_ns);
    srv_response_note(resp, "frames=%d audio_ms=%.1f unet_ms=%.1f composite_ms=%.1f%s", v.batch,
                      out.audio_processing_ms, out.inference_time_ms, out.composite_time_ms,
                      lease.loaded_now ? " loaded" : "");
    return srv_response_pack(resp, &out.base);
}

static int64_t mib(size_t bytes) { return (int64_t)((bytes + (1u << 20) - 1) >> 20); }

static float avg_infer_ms(const reg_info *i) {
    return i->requests ? (float)((double)i->infer_ns / 1e6 / (double)i->requests) : 0.0f;
}

/* ListModels and GetModelStats: one entry per known id, built in the worker arena. */
typedef struct compat_list {
    ls_arena *arena;
    int stats;           /* 1: ModelStats, 0: ModelInfo */
    void **items;
    size_t n;
} compat_list;

static void compat_list_add(void *ctx, const reg_info *i) {
    compat_list *l = ctx;
    char *id = l->n < APP_LIST_MAX ? arena_alloc(l->arena, sizeof i->id, 1) : NULL;
    if (!id) return;
    memcpy(id, i->id, sizeof i->id);
    if (l->stats) {
        Monolithic__ModelStats *o = arena_array(l->arena, Monolithic__ModelStats, 1);
        if (!o) return;
        monolithic__model_stats__init(o);
        o->model_id = id;
        o->loaded = i->loaded;
        o->gpu_id = i->gpu_id;
        o->memory_mb = mib(i->memory_bytes);
        o->request_count = (int32_t)(i->requests > INT32_MAX ? INT32_MAX : i->requests);
        o->total_inference_ms = (int64_t)(i->infer_ns / 1000000u);
        o->avg_inference_ms = avg_infer_ms(i);
        o->last_used_timestamp = i->last_used_ms / 1000;
        l->items[l->n++] = o;
    } else {
        Monolithic__ModelInfo *o = arena_array(l->arena, Monolithic__ModelInfo, 1);
        if (!o) return;
        monolithic__model_info__init(o);
        o->model_id = id;
        o->loaded = i->loaded;
        o->gpu_id = i->gpu_id;
        o->memory_mb = mib(i->memory_bytes);
        o->request_count = (int32_t)(i->requests > INT32_MAX ? INT32_MAX : i->requests);
        o->avg_inference_ms = avg_infer_ms(i);
        l->items[l->n++] = o;
    }
}

static int compat_list_reply(app *a, srv_request *req, srv_response *resp, int stats) {
    compat_list l = {.arena = req->arena, .stats = stats, .items = arena_array(req->arena, void *, APP_LIST_MAX)};
    if (!l.items) return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "worker arena exhausted");
    reg_list(a->reg, false, compat_list_add, &l);
    if (stats) {
        Monolithic__GetModelStatsResponse out = MONOLITHIC__GET_MODEL_STATS_RESPONSE__INIT;
        out.n_models = l.n;
        out.models = (Monolithic__ModelStats **)l.items;
        return srv_response_pack(resp, &out.base);
    }
    Monolithic__ListModelsResponse out = MONOLITHIC__LIST_MODELS_RESPONSE__INIT;
    out.n_models = l.n;
    out.models = (Monolithic__ModelInfo **)l.items;
    return srv_response_pack(resp, &out.base);
}

int app_compat_list_models(void *ctx, srv_request *req, srv_response *resp) {
    if (!srv_request_unpack(req, &monolithic__list_models_request__descriptor, resp)) return -1;
    return compat_list_reply(ctx, req, resp, 0);
}

int app_compat_get_model_stats(void *ctx, srv_request *req, srv_response *resp) {
    if (!srv_request_unpack(req, &monolithic__get_model_stats_request__descriptor, resp)) return -1;
    return compat_list_reply(ctx, req, resp, 1);
}

int app_compat_load_model(void *ctx, srv_request *req, srv_response *resp) {
    app *a = ctx;
    Monolithic__LoadModelRequest *in = (Monolithic__LoadModelRequest *)srv_request_unpack(
        req, &monolithic__load_model_request__descriptor, resp);
    if (!in) return -1;
    Monolithic__LoadModelResponse out = MONOLITHIC__LOAD_MODEL_RESPONSE__INIT;
    reg_info info;
    double load_ms = 0;
    bool already = false;
    ls_err err = {0};
    srv_response_note(resp, "avatar=%.64s", in->model_id);
    /* preferred_gpu is not honoured: avatars go to the least loaded configured GPU (docs/gpu.md). */
    out.gpu_id = -1;
    if (reg_load(a->reg, in->model_id, &info, &load_ms, &already, &err) != 0) {
        out.error = err.msg;
        srv_response_note(resp, "inband_error=%s", ls_code_name(err.code));
    } else {
        out.success = true;
        out.gpu_id = info.gpu_id;
        out.load_time_ms = (float)load_ms;
    }
    return srv_response_pack(resp, &out.base);
}

int app_compat_unload_model(void *ctx, srv_request *req, srv_response *resp) {
    app *a = ctx;
    Monolithic__UnloadModelRequest *in = (Monolithic__UnloadModelRequest *)srv_request_unpack(
        req, &monolithic__unload_model_request__descriptor, resp);
    if (!in) return -1;
    Monolithic__UnloadModelResponse out = MONOLITHIC__UNLOAD_MODEL_RESPONSE__INIT;
    bool deferred;
    ls_err err = {0};
    srv_response_note(resp, "avatar=%.64s", in->model_id);
    if (reg_unload(a->reg, in->model_id, &deferred, &err) != 0) {
        out.error = err.msg;
        srv_response_note(resp, "inband_error=%s", ls_code_name(err.code));
    } else {
        out.success = true;
        if (deferred) srv_response_note(resp, "deferred");
    }
    return srv_response_pack(resp, &out.base);
}
