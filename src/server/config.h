/* config.h - lipsyncd's configuration: defaults, and the YAML file that overrides them.
 *
 * srv_config_defaults() fills every field with a value that serves the demo avatar on
 * 127.0.0.1:50053. srv_config_load() parses a YAML file (libyaml) over those defaults; it accepts
 * the Go server's keys where they mean the same thing (server.port, server.max_message_size_mb,
 * server.worker_count, capacity.*, onnx.intra_op_threads, output.jpeg_quality, models: {...}).
 * Unknown keys, wrong types and out-of-range values fail with "FILE:LINE: key.path: why".
 * The struct owns its model table (heap, freed by srv_config_free); all strings are inline. */
#ifndef LS_SRV_CONFIG_H
#define LS_SRV_CONFIG_H

#include <stdbool.h>

#include "common/err.h"
#include "infer/ort_ep.h"

#define SRV_CFG_PATH_MAX 1024
#define SRV_CFG_ID_MAX 64
#define SRV_MAX_CUDA_DEVICES 16
#define SRV_MAX_AFFINITY_CPUS 256 /* CPUs an explicit onnx.thread_affinity list may name */

typedef enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG } srv_log_level;
typedef enum { SRV_EVICT_LFU = 0, SRV_EVICT_LRU, SRV_EVICT_NONE } srv_eviction;
typedef enum { SRV_AFFINITY_NONE = 0, SRV_AFFINITY_AUTO } srv_affinity;

/* One entry of `models:` (Go server layout): an avatar described by explicit paths instead of a
 * package under avatars_root. Exactly one of background_dir / source_video is set. */
typedef struct srv_model_cfg {
    char id[SRV_CFG_ID_MAX + 1];
    char model_path[SRV_CFG_PATH_MAX];
    char background_dir[SRV_CFG_PATH_MAX];
    char source_video[SRV_CFG_PATH_MAX];
    char crop_rects_path[SRV_CFG_PATH_MAX];
    int num_frames;            /* 0 = all frames found */
    int provider;              /* -1: onnx.provider; else an ort_ep_kind for this model's UNet */
    bool preload_backgrounds;
    bool preload_model;
    int line;                  /* where it was declared, for later error messages */
} srv_model_cfg;

typedef struct srv_config {
    /* server: */
    char listen[256];              /* host:port, default 127.0.0.1:50053 */
    int worker_count;              /* render workers; default: online CPUs, 1..256 */
    int queue_depth;               /* calls waiting for a worker before RESOURCE_EXHAUSTED */
    int max_message_size_mb;       /* max receive and send size, default 100 */
    int keepalive_time_ms;         /* server pings an idle connection after this; default 2 h */
    int keepalive_timeout_ms;      /* ...and drops it if no ack within this; default 20 s */
    bool keepalive_permit_without_calls;
    int keepalive_min_ping_interval_ms; /* clients pinging more often get GOAWAY; default 5 min */
    int shutdown_grace_ms;         /* in-flight calls get this long on SIGTERM; default 10 s */
    char tls_cert[SRV_CFG_PATH_MAX]; /* PEM; both empty = plaintext */
    char tls_key[SRV_CFG_PATH_MAX];
    char auth_token[256];          /* non-empty: require "authorization: Bearer <token>" */
    bool auth_exempt_health;       /* grpc.health.v1.Health/Check without token; default true */
    /* logging: */
    srv_log_level log_level;       /* default info */
    int log_ring;                  /* pending log lines before lines are dropped; default 4096 */
    /* avatars and capacity: */
    char avatars_root[SRV_CFG_PATH_MAX]; /* folder of avatar packages; default: the build's
                                            avatars/ (LS_DEFAULT_AVATARS_ROOT), else "avatars" */
    char audio_encoder[SRV_CFG_PATH_MAX]; /* encoder of `models:` entries; default: the build's
                                             models/ave_encoder.onnx (LS_DEFAULT_AUDIO_ENCODER) */
    int max_models;                /* loaded avatars at once; default 8 */
    double max_memory_gb;          /* memory budget of loaded avatars; default 8 */
    srv_eviction eviction_policy;  /* default lfu */
    int intra_op_threads;          /* ONNX Runtime threads per session; default 1 */
    srv_affinity thread_affinity;  /* onnx.thread_affinity: none (default) | auto | [CPU, ...]
                                      (auto over those CPUs); cpu_plan.h says who goes where */
    int affinity_cpus[SRV_MAX_AFFINITY_CPUS]; /* the list, 0..1023, distinct; none: the CPUs */
    int n_affinity_cpus;                      /* sched_getaffinity allows */
    char ort_cache_dir[SRV_CFG_PATH_MAX]; /* optimised graphs cached here; "" = off; default: the
                                             build's ort-cache folder */
    /* onnx: execution provider (docs/gpu.md) */
    ort_ep_kind provider;          /* onnx.provider: cpu (default) | cuda */
    bool fallback_cpu;             /* onnx.fallback: cpu = run on the CPU when CUDA is unavailable
                                      (logged); none (default) = refuse to start */
    int uint8_io;                  /* onnx.uint8_io: wrap UNets for uint8 images; -1 (default) =
                                      on with cuda, off with cpu */
    int cuda_device_ids[SRV_MAX_CUDA_DEVICES]; /* onnx.cuda.device_ids, default [0] */
    int n_cuda_devices;
    double cuda_memory_limit_gb;   /* onnx.cuda.memory_limit_gb per GPU and session; 0 = none */
    ort_cudnn_search cudnn_search; /* onnx.cuda.cudnn_conv_algo_search; default exhaustive */
    int cuda_tf32;                 /* onnx.cuda.tf32: -1 (default) ORT's choice, 0 off, 1 on */
    int cuda_graph;                /* onnx.cuda.cuda_graph: -1 (default) where the EP-device API
                                      allows, 0 off, 1 required */
    char cuda_provider_lib[SRV_CFG_PATH_MAX]; /* onnx.cuda.provider_library; "" = beside ORT */
    ort_cuda_api cuda_api;         /* onnx.cuda.api: auto (default) | ep_device | classic */
    bool cuda_device_tensors;      /* onnx.cuda.device_tensors: default true (ort_ep_cfg.host_tensors) */
    int jpeg_quality;              /* default 75 */
    int max_batch;                 /* frames per render batch; default 32 */
    int pipeline;                  /* capacity.pipeline: a Render of several batches runs the UNet
                                      on a thread of its own beside prep and composite (render.h);
                                      -1 (default) = on with cuda, off with cpu */
    int max_frame_width;           /* largest avatar frame the workers composite; default 1920 */
    int max_frame_height;          /* default 1080 */
    double max_audio_seconds;      /* longest request audio; default 60 */
    srv_model_cfg *models;         /* `models:` entries, n_models of them */
    int n_models;
    /* stream: (live sessions, the Stream RPC; docs/streaming.md) */
    int stream_max_sessions;       /* live sessions in total; 0 = Stream disabled; default 16 */
    int stream_max_sessions_per_model; /* per UNet model; default 8 */
    int stream_max_batch;          /* UNet batch formed across sessions; default 8 */
    int stream_max_wait_us;        /* how long a partial batch waits; default 4000 */
    int stream_encoder_max_wait_us; /* how long an encoder run waits for other sessions; default 1000,
                                       at most 20000 (the wait holds the session's lock) */
    int stream_queue_limit;        /* undelivered frames per session; default 32 */
    int stream_stalled_send_ms;    /* a frame's send outstanding this long: the client is taken to
                                      have stopped reading (burst sessions then drop); default 1000 */
    int stream_workers;            /* scheduler threads per model; default 1 */
    /* testing: (test hooks, never enable in production) */
    bool testing_enable_sleep;     /* adds /lipsyncd.testing.Testing/Sleep, see docs/api.md */
} srv_config;

/* Fills every field with its default (no allocation). */
void srv_config_defaults(srv_config *cfg);

/* Parses `path` over the current contents of *cfg (call srv_config_defaults first). On error
 * returns -1 with err = "path:line: key: why" (LS_EINVAL, or LS_EIO when unreadable). */
int srv_config_load(srv_config *cfg, const char *path, ls_err *err);

/* The same for YAML text in memory; `name` is used in messages. */
int srv_config_parse(srv_config *cfg, const char *text, size_t len, const char *name, ls_err *err);

/* Sets cfg->listen from --listen ADDR ("host:port", "[v6]:port" or ":port" = 127.0.0.1). */
int srv_config_set_listen(srv_config *cfg, const char *addr, ls_err *err);

void srv_config_free(srv_config *cfg);

const char *srv_log_level_name(srv_log_level level);

#endif
