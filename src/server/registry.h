/* registry.h - the avatars lipsyncd serves, by id: loaded on demand or at start, shared by all
 * calls, counted by real bytes, evicted when the capacity would be exceeded.
 *
 * Ids are names ([A-Za-z0-9_.-]{1,64}, validate.h): avatars_root/<id>/ (a package; its real path
 * must lie inside the real avatars_root) or a `models:` entry of the config (Go layout; its encoder
 * is the config's audio_encoder). An entry = the avatar (frames and boxes) + its UNet + the audio
 * encoder. Models are cached by (path, role) and reference-counted, so avatars naming the same
 * encoder share one ORT session.
 *
 * Fast path: at load each avatar also gets its prepared-crop cache (pipeline/avatar_cache.h) and
 * its spliced-JPEG backgrounds at the server's default quality (pipeline/encode.h, all built at
 * load), both read-only and shared by every call; the lease hands them out.
 *
 * Memory: an avatar's memory_bytes = avatar_bytes() + the two caches + ort_model_bytes() of its UNet and encoder;
 * the registry's total counts each distinct model once (shared encoders are not double counted).
 * Capacity: loading more than max_models avatars or more than max_bytes in total evicts idle
 * avatars first (LFU: fewest requests, ties to the least recently used; or LRU; or none), and
 * fails with LS_ENOMEM (RESOURCE_EXHAUSTED) when evicting every idle avatar would not make room.
 * An avatar in use (acquired and not released) is never freed: unloading it is deferred to its
 * last release. Workers keep the models they are bound to alive (reg_bind_worker), so a binding
 * never outlives its session; such a session of an unloaded avatar lives until the worker binds
 * another (at most one UNet and one encoder per worker) and is no longer in the total.
 *
 * Threads: every function is thread-safe. One mutex guards the tables; loading (files, ONNX
 * sessions) runs outside it, and concurrent requests for an id being loaded wait for that load.
 * Statistics persist across unload/reload (the LFU counts really grow). Errors: LS_EINVAL (bad
 * id), LS_ENOTFOUND (no such avatar, or not loaded for unload), LS_ENOMEM (capacity), LS_EFORMAT /
 * LS_EMODEL / LS_EIO (broken package or model: FAILED_PRECONDITION). */
#ifndef LS_SRV_REGISTRY_H
#define LS_SRV_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avatar/avatar.h"
#include "common/err.h"
#include "infer/ort_model.h"
#include "pipeline/worker.h"
#include "server/config.h"

#define REG_ID_MAX 64

typedef struct reg_cfg {
    const char *avatars_root;
    const srv_model_cfg *models;     /* `models:` entries (borrowed for the registry's life) */
    int n_models;
    const char *audio_encoder;       /* encoder of the `models:` entries */
    int max_models;
    size_t max_bytes;
    srv_eviction policy;
    int intra_op_threads;
    struct srv_cpu_plan *cpu_plan;   /* NULL or off: ORT places pool threads; else each CPU
                                        session's pool takes intra_op_threads - 1 CPUs from it */
    ort_ep_cfg ep;                   /* provider of every model (after start-up's CUDA check) */
    const int *cuda_devices;         /* GPUs to place avatars on (ep.kind == ORT_EP_CUDA) */
    int n_cuda_devices;
    bool uint8_io;                   /* UNets wrapped for uint8 images (ort_model_opts.uint8_io) */
    bool fallback_cpu;               /* CUDA unavailable at creation: run on the CPU (else fail) */
    const char *ort_cache_dir;       /* optimised graphs cached here (ort_cache_path); NULL/"" = off */
    int max_frame_w, max_frame_h;    /* larger avatars are refused at load (the workers' frame) */
    int jpeg_quality;                /* quality of the spliced-JPEG backgrounds (output default) */
} reg_cfg;

typedef struct reg_registry reg_registry;
typedef struct reg_entry reg_entry;
typedef struct reg_model reg_model;

/* What a call holds between reg_acquire and reg_release. */
typedef struct reg_lease {
    reg_entry *entry;
    const avatar *av;
    const struct pipe_avcache *prepared;  /* av's prepared crops (pipe_render_req.prepared) */
    struct pipe_jpeg_set *jpeg;           /* av's JPEG backgrounds (pipe_jpeg_encode) */
    reg_model *encoder, *unet;
    bool loaded_now;      /* this acquire loaded it */
    double load_ms;       /* ...taking this long */
} reg_lease;

typedef struct reg_info {
    char id[REG_ID_MAX + 1];
    bool loaded;
    int frames, width, height;        /* known once loaded (kept after unload) */
    size_t memory_bytes;              /* 0 when not loaded */
    uint64_t requests, frames_rendered;
    uint64_t render_ns, infer_ns;     /* summed over requests: whole render, UNet only */
    int64_t last_used_ms;             /* Unix ms of the last acquire; 0 = never */
    int in_use;
    int gpu_id;                       /* CUDA device of its models; -1 on the CPU or not loaded */
    double load_ms;                   /* last load */
} reg_info;

typedef struct reg_use {
    uint64_t frames, render_ns, infer_ns;
} reg_use;

/* With ep.kind CUDA, checks at once that ONNX Runtime's CUDA provider and every listed GPU exist:
 * if not, fails (LS_EMODEL, the reason and the way out in the message) or, with fallback_cpu,
 * switches to the CPU and says why in reg_ep_note(). */
reg_registry *reg_create(const reg_cfg *cfg, ls_err *err);
const char *reg_ep_note(const reg_registry *r); /* "" or why CUDA fell back to the CPU */
ort_ep_kind reg_ep(const reg_registry *r);      /* the provider in effect */
bool reg_uint8_io(const reg_registry *r);       /* UNets wrapped for uint8 images, in effect */
/* GPU memory ORT holds for the models placed on CUDA device `dev` (ort_model_device_bytes). */
size_t reg_gpu_bytes(reg_registry *r, int dev);
/* Host memory ORT's CPU arenas hold (ort_model_host_bytes): the arena the CPU sessions share
 * (each reports it whole) plus each CUDA session's own; 0 when no model is loaded (the shared
 * arena keeps its memory then, but no session is left to ask). */
size_t reg_host_bytes(reg_registry *r);
void reg_destroy(reg_registry *r);     /* after every lease is released and worker unbound */

/* The ONNX session of a leased model (alive while the lease is held). */
ort_model *reg_model_ort(const reg_model *m);
int reg_model_device(const reg_model *m); /* CUDA ordinal; -1 on the CPU (or m NULL) */

/* Loads the `models:` entries marked preload_model or preload_backgrounds. */
int reg_preload(reg_registry *r, ls_err *err);

/* Takes a reference on avatar `id` for one request (loads it when needed; counts a request). */
int reg_acquire(reg_registry *r, const char *id, reg_lease *out, ls_err *err);
/* Drops it, adding the request's work to the statistics (use may be NULL). */
void reg_release(reg_registry *r, reg_lease *l, const reg_use *use);

/* LoadAvatar: loads without counting a request; *already when it was loaded before. */
int reg_load(reg_registry *r, const char *id, reg_info *info, double *load_ms, bool *already, ls_err *err);
/* UnloadAvatar: frees it now, or at its last release (*deferred). LS_ENOTFOUND when not loaded. */
int reg_unload(reg_registry *r, const char *id, bool *deferred, ls_err *err);

/* Every known id (packages under avatars_root, `models:` entries, loaded ones), each once, or only
 * the loaded ones. fn runs with the registry locked: copy, do not call back into the registry. */
typedef void (*reg_list_fn)(void *ctx, const reg_info *info);
void reg_list(reg_registry *r, bool loaded_only, reg_list_fn fn, void *ctx);

/* Loaded avatars and total bytes (lock-free; for health). */
int reg_loaded_count(const reg_registry *r);
size_t reg_total_bytes(const reg_registry *r);

/* Per worker: binds w to the lease's models unless it is bound to them already (then nothing is
 * locked or allocated), keeping them alive while bound. *held is the worker's record ({0} at
 * first); reg_unbind_worker releases it (worker shutdown). */
typedef struct reg_binding {
    reg_model *encoder, *unet;
} reg_binding;
int reg_bind_worker(reg_registry *r, reg_binding *held, const reg_lease *l, pipe_worker *w, ls_err *err);
void reg_unbind_worker(reg_registry *r, reg_binding *held, pipe_worker *w);

#endif
