/* srv_app.h - what the transport needs from the application (the rendering side).
 *
 * The transport knows nothing about avatars or models. The application fills a srv_app:
 *   - ctx: its state (avatar registry, shared models, statistics), passed to every handler as
 *     `app` and to every callback below.
 *   - worker_create/destroy: per-worker state (render scratch sized for the max batch and frame
 *     size), created once per worker thread before the server starts, handed to handlers as
 *     req->worker_state. Two workers never share it.
 *   - health: fills srv_app_health; must not block (it runs on the I/O thread).
 *   - methods: handlers that replace the built-in "not wired yet" ones (matched by path).
 *   - stream_methods: bidirectional streaming methods (stream_call.h), one thread per call.
 *   - arena_bytes: extra per-worker arena bytes the handlers need beyond the request message.
 * srv_app_create() is implemented by the application (app.c: the avatar registry and both APIs
 * wired to the pipeline) and is called once by lipsyncd's main after the config is loaded. */
#ifndef LS_SRV_APP_H
#define LS_SRV_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "server/config.h"
#include "server/handler.h"

#define SRV_MAX_GPUS 16

typedef struct srv_app_health {
    bool ready;                 /* preloads finished: grpc.health reports SERVING */
    int loaded_models;
    int max_models;
    long long memory_bytes;     /* held by loaded avatars and their models (GetStats) */
    long long inference_host_bytes; /* ORT's shared CPU arena (reg_host_bytes) */
    int n_gpus;
    int gpu_ids[SRV_MAX_GPUS];
    float gpu_memory_used_gb[SRV_MAX_GPUS];
    long long gpu_memory_bytes[SRV_MAX_GPUS];
} srv_app_health;

typedef struct srv_app {
    void *ctx;
    void *(*worker_create)(void *ctx, int worker_index, ls_err *err); /* NULL = no state */
    void (*worker_destroy)(void *ctx, void *state);
    void (*health)(void *ctx, srv_app_health *out);
    const srv_method *methods;
    int n_methods;
    const srv_stream_method *stream_methods; /* bidirectional streaming methods */
    int n_stream_methods;
    size_t arena_bytes;
    void (*destroy)(void *ctx);  /* frees ctx; called after all workers stopped */
    const char *inference;       /* where models run, for the start-up log ("cpu", "cuda: GPUs 0,1") */
    const char *warning;         /* "" or a start-up warning to log (e.g. a CUDA fallback) */
    int (*worker_cpu)(void *ctx, int worker_index); /* NULL, or the CPU each worker thread starts
                                                       pinned to (-1: not pinned) */
} srv_app;

/* Builds the application from the config (registries, preloads). 0, or -1 with err. */
int srv_app_create(srv_app *app, const srv_config *cfg, ls_err *err);

#endif
