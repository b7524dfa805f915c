/* app.c - lipsyncd's application (srv_app.h): the avatar registry, per-worker rendering state,
 * health and the method table that wires both APIs to the pipeline. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipsync/v1/lipsync.pb-c.h"
#include "monolithic.pb-c.h"
#include "pipeline/clip.h"
#include "server/app_priv.h"
#include "server/stream_models.h"

static const srv_method METHODS[] = {
    {"/lipsync.v1.LipSync/Render", app_v1_render, 0},
    {"/lipsync.v1.LipSync/ListAvatars", app_v1_list_avatars, 0},
    {"/lipsync.v1.LipSync/LoadAvatar", app_v1_load_avatar, 0},
    {"/lipsync.v1.LipSync/UnloadAvatar", app_v1_unload_avatar, 0},
    {"/monolithic.MonolithicService/InferBatchComposite", app_compat_infer, 0},
    {"/monolithic.MonolithicService/ListModels", app_compat_list_models, 0},
    {"/monolithic.MonolithicService/LoadModel", app_compat_load_model, 0},
    {"/monolithic.MonolithicService/UnloadModel", app_compat_unload_model, 0},
    {"/monolithic.MonolithicService/GetModelStats", app_compat_get_model_stats, 0},
};

static const srv_stream_method STREAM_METHODS[] = {{"/lipsync.v1.LipSync/Stream", app_v1_stream}};

int app_fail(srv_request *req, srv_response *resp, const ls_err *err) {
    if (err->code == LS_ECANCELLED && srv_request_cancelled(req) == 2)
        return srv_response_fail(resp, GRPC_STATUS_DEADLINE_EXCEEDED, "%s", err->msg);
    return srv_response_fail_err(resp, err);
}

int app_clip_features(app_worker *w, const void *bytes, size_t n_bytes, pcm_format fmt, int rate,
                      size_t min_samples, size_t *n_frames, ls_err *err) {
    size_t n;
    if (pcm_convert(w->pcm, bytes, n_bytes, fmt, rate, 1, w->pcm_buf, w->max_samples, &n, err) != 0)
        return -1;
    if (n < min_samples && min_samples <= w->max_samples) {
        memset(w->pcm_buf + n, 0, (min_samples - n) * sizeof(float));
        n = min_samples;
    }
    return pipe_clip_features(w->pw, w->pcm_buf, n, w->mel, w->feats, n_frames, err);
}

static void worker_destroy(void *ctx, void *state) {
    app *a = ctx;
    app_worker *w = state;
    if (!w) return;
    if (w->pw) reg_unbind_worker(a->reg, &w->held, w->pw);
    pipe_worker_destroy(w->pw);
    pipe_jpeg_enc_free(w->jpeg);
    pcm_converter_free(w->pcm);
    arena_free(&w->arena);
    free(w);
}

static void *worker_create(void *ctx, int index, ls_err *err) {
    app *a = ctx;
    (void)index;
    app_worker *w = calloc(1, sizeof *w);
    if (!w) return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    w->max_samples = a->max_samples;
    pipe_worker_cfg pc = {.max_batch = a->cfg->max_batch, .max_frame_w = a->cfg->max_frame_width,
                          .max_frame_h = a->cfg->max_frame_height, .jpeg_quality = a->cfg->jpeg_quality,
                          .pipeline = a->pipeline};
    size_t floats = a->max_samples + pipe_clip_mel_floats(a->max_samples) +
                    pipe_clip_feat_floats(a->max_samples) +
                    (size_t)VAL_COMPOSITE_MAX_BATCH * (ORT_UNET_AUDIO_ELEMS + ORT_UNET_IMG_ELEMS);
    if (!(w->pw = pipe_worker_create(&pc, err)) || !(w->pcm = pcm_converter_create(a->max_samples, err)) ||
        !(w->jpeg = pipe_jpeg_enc_create(pc.max_frame_w, pc.max_frame_h, err)))
        goto fail;
    if (arena_init(&w->arena, floats * sizeof(float) + 5 * 64) != 0) {
        ls_fail(err, LS_ENOMEM, "cannot allocate %zu MiB of audio buffers", (floats * 4) >> 20);
        goto fail;
    }
    w->pcm_buf = arena_array(&w->arena, float, a->max_samples);
    w->mel = arena_array(&w->arena, float, pipe_clip_mel_floats(a->max_samples));
    w->feats = arena_array(&w->arena, float, pipe_clip_feat_floats(a->max_samples));
    w->audio_in = arena_array(&w->arena, float, (size_t)VAL_COMPOSITE_MAX_BATCH * ORT_UNET_AUDIO_ELEMS);
    w->image_in = arena_array(&w->arena, float, (size_t)VAL_COMPOSITE_MAX_BATCH * ORT_UNET_IMG_ELEMS);
    if (!w->image_in) { ls_fail(err, LS_EINTERNAL, "worker arena sized too small"); goto fail; }
    return w;
fail:
    worker_destroy(ctx, w);
    return NULL;
}

static void app_health(void *ctx, srv_app_health *out) {
    const app *a = ctx;
    out->ready = true; /* preloads run in srv_app_create, before the server listens */
    out->loaded_models = reg_loaded_count(a->reg);
    out->max_models = a->cfg->max_models;
    out->memory_bytes = (long long)reg_total_bytes(a->reg);
    out->inference_host_bytes = (long long)reg_host_bytes(a->reg);
    out->n_gpus = 0;
    if (reg_ep(a->reg) == ORT_EP_CUDA)
        for (int i = 0; i < a->cfg->n_cuda_devices && i < SRV_MAX_GPUS; i++) {
            int dev = a->cfg->cuda_device_ids[i];
            out->gpu_ids[i] = dev;
            size_t bytes = reg_gpu_bytes(a->reg, dev);
            out->gpu_memory_bytes[i] = (long long)bytes;
            out->gpu_memory_used_gb[i] = (float)((double)bytes / 1073741824.0);
            out->n_gpus = i + 1;
        }
}

static void app_destroy(void *ctx) {
    app *a = ctx;
    app_stream_destroy(a->stream);
    reg_destroy(a->reg);
    free(a);
}

static int worker_cpu(void *ctx, int index) { return srv_cpu_plan_worker(&((app *)ctx)->cpus, index); }

int srv_app_create(srv_app *out, const srv_config *cfg, ls_err *err) {
    app *a = calloc(1, sizeof *a);
    if (!a) return ls_fail(err, LS_ENOMEM, "out of memory");
    if (srv_cpu_plan_init(&a->cpus, cfg, err) != 0) {
        free(a);
        return -1;
    }
    a->cfg = cfg;
    a->lim.max_audio_seconds = cfg->max_audio_seconds;
    a->max_samples = (size_t)ceil(cfg->max_audio_seconds * PCM_RATE) + 1;
    a->max_frames = pipe_clip_frames(a->max_samples);
    reg_cfg rc = {.avatars_root = cfg->avatars_root, .models = cfg->models, .n_models = cfg->n_models,
                  .audio_encoder = cfg->audio_encoder, .max_models = cfg->max_models,
                  .max_bytes = (size_t)(cfg->max_memory_gb * 1073741824.0), .policy = cfg->eviction_policy,
                  .intra_op_threads = cfg->intra_op_threads, .cpu_plan = &a->cpus,
                  .ep = {.kind = cfg->provider, .mem_limit = (size_t)(cfg->cuda_memory_limit_gb * 1073741824.0),
                         .cudnn_search = cfg->cudnn_search, .tf32 = cfg->cuda_tf32, .cuda_graph = cfg->cuda_graph,
                         .provider_lib = cfg->cuda_provider_lib, .api = cfg->cuda_api,
                         .host_tensors = !cfg->cuda_device_tensors},
                  .cuda_devices = cfg->cuda_device_ids, .n_cuda_devices = cfg->n_cuda_devices,
                  .uint8_io = cfg->uint8_io < 0 ? cfg->provider == ORT_EP_CUDA : cfg->uint8_io == 1,
                  .fallback_cpu = cfg->fallback_cpu,
                  .ort_cache_dir = cfg->ort_cache_dir, .max_frame_w = cfg->max_frame_width,
                  .max_frame_h = cfg->max_frame_height, .jpeg_quality = cfg->jpeg_quality};
    if (!(a->reg = reg_create(&rc, err)) || reg_preload(a->reg, err) != 0) {
        app_destroy(a);
        return -1;
    }
    /* By default the UNet overlaps the CPU stages on a GPU (where it leaves the CPU idle), in
     * render workers and live-session schedulers alike; on the CPU they would share the cores
     * with it (docs/performance.md has the measurement). */
    a->pipeline = cfg->pipeline < 0 ? reg_ep(a->reg) == ORT_EP_CUDA : cfg->pipeline;
    if (!(a->stream = app_stream_create(cfg, &a->cpus, a->pipeline, err))) {
        app_destroy(a);
        return -1;
    }
    size_t used = (size_t)snprintf(a->inference, sizeof a->inference, "%s", ort_ep_kind_name(reg_ep(a->reg)));
    for (int i = 0; reg_ep(a->reg) == ORT_EP_CUDA && i < cfg->n_cuda_devices && used < sizeof a->inference; i++)
        used += (size_t)snprintf(a->inference + used, sizeof a->inference - used, "%s%d", i ? "," : ": GPUs ",
                                 cfg->cuda_device_ids[i]);
    if (reg_uint8_io(a->reg) && used < sizeof a->inference)
        used += (size_t)snprintf(a->inference + used, sizeof a->inference - used, ", uint8 I/O");
    if (a->pipeline && used < sizeof a->inference)
        used += (size_t)snprintf(a->inference + used, sizeof a->inference - used, ", pipelined");
    if (a->cpus.n > 0 && used < sizeof a->inference) {
        char aff[96];
        srv_cpu_plan_describe(&a->cpus, aff, sizeof aff);
        snprintf(a->inference + used, sizeof a->inference - used, ", threads pinned: %s", aff);
    }
    /* Per-worker arena beyond the request: the largest reply's bytes (bounded by the message size
     * limit, checked while filling), one Frame + Box + pointer per frame, and the list replies. */
    size_t max_msg = (size_t)cfg->max_message_size_mb << 20;
    size_t per_frame = sizeof(Lipsync__V1__Frame) + sizeof(Lipsync__V1__Box) + sizeof(void *) + 3 * 64;
    size_t list = (size_t)APP_LIST_MAX * (sizeof(Lipsync__V1__AvatarInfo) + sizeof(Monolithic__ModelStats) +
                                          sizeof(void *) + 2 * (REG_ID_MAX + 1) + 64);
    *out = (srv_app){.ctx = a, .worker_create = worker_create, .worker_destroy = worker_destroy,
                     .health = app_health, .methods = METHODS,
                     .n_methods = (int)(sizeof METHODS / sizeof *METHODS),
                     .stream_methods = STREAM_METHODS, .n_stream_methods = 1,
                     .arena_bytes = max_msg + a->max_frames * per_frame + list + (1u << 16),
                     .destroy = app_destroy, .inference = a->inference, .warning = reg_ep_note(a->reg),
                     .worker_cpu = worker_cpu};
    return 0;
}
