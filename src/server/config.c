/* config.c - defaults and the YAML loader declared in config.h.
 *
 * The file is loaded as a libyaml document (node tree with line marks) and walked against a table
 * of known keys, so every key, its type and its range are declared in one place below. */
#include "server/config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

typedef enum {
    K_INT, K_DOUBLE, K_BOOL, K_STR, K_LOGLEVEL, K_EVICT, K_PORT,
    K_PROVIDER, /* cpu | cuda, into an int (ort_ep_kind) */
    K_FALLBACK, /* none | cpu, into a bool */
    K_CUDNN,    /* exhaustive | heuristic | default */
    K_TRIBOOL,  /* true | false into an int 1 / 0 (the default, -1, means "not said") */
    K_DEVICES,  /* a list of CUDA ordinals (or one) into cuda_device_ids */
    K_CUDA_API, /* auto | ep_device | classic */
    K_AFFINITY  /* none | auto | a list of CPU numbers, into thread_affinity + affinity_cpus */
} key_type;

typedef struct {
    const char *path;
    key_type type;
    size_t off;
    size_t size;     /* K_STR: buffer size */
    double min, max; /* K_INT, K_DOUBLE, K_PORT */
} key_def;

#define F(field) offsetof(srv_config, field)
#define S(field) offsetof(srv_config, field), sizeof(((srv_config *)0)->field)
static const key_def KEYS[] = {
    {"server.listen", K_STR, S(listen), 0, 0},
    {"server.port", K_PORT, 0, 0, 1, 65535},
    {"server.worker_count", K_INT, F(worker_count), 0, 1, 256},
    {"worker_count", K_INT, F(worker_count), 0, 1, 256},
    {"server.queue_depth", K_INT, F(queue_depth), 0, 1, 65536},
    {"server.max_message_size_mb", K_INT, F(max_message_size_mb), 0, 1, 2047},
    {"max_message_size_mb", K_INT, F(max_message_size_mb), 0, 1, 2047},
    {"server.keepalive.time_ms", K_INT, F(keepalive_time_ms), 0, 1000, INT_MAX},
    {"server.keepalive.timeout_ms", K_INT, F(keepalive_timeout_ms), 0, 100, INT_MAX},
    {"server.keepalive.permit_without_calls", K_BOOL, F(keepalive_permit_without_calls), 0, 0, 0},
    {"server.keepalive.min_ping_interval_ms", K_INT, F(keepalive_min_ping_interval_ms), 0, 0, INT_MAX},
    {"server.shutdown_grace_s", K_DOUBLE, F(shutdown_grace_ms), 0, 0, 3600},
    {"server.tls.cert", K_STR, S(tls_cert), 0, 0},
    {"server.tls.key", K_STR, S(tls_key), 0, 0},
    {"server.auth.token", K_STR, S(auth_token), 0, 0},
    {"server.auth.exempt_health", K_BOOL, F(auth_exempt_health), 0, 0, 0},
    {"logging.level", K_LOGLEVEL, F(log_level), 0, 0, 0},
    {"logging.ring", K_INT, F(log_ring), 0, 16, 1 << 20},
    {"avatars_root", K_STR, S(avatars_root), 0, 0},
    {"audio_encoder", K_STR, S(audio_encoder), 0, 0},
    {"capacity.max_frame_width", K_INT, F(max_frame_width), 0, 16, 8192},
    {"capacity.max_frame_height", K_INT, F(max_frame_height), 0, 16, 8192},
    {"capacity.max_audio_seconds", K_DOUBLE, F(max_audio_seconds), 0, 0.5, 3600},
    {"capacity.max_models", K_INT, F(max_models), 0, 1, 100000},
    {"capacity.max_memory_gb", K_DOUBLE, F(max_memory_gb), 0, 0.001, 1 << 20},
    {"capacity.eviction_policy", K_EVICT, F(eviction_policy), 0, 0, 0},
    {"eviction_policy", K_EVICT, F(eviction_policy), 0, 0, 0},
    {"capacity.max_batch", K_INT, F(max_batch), 0, 1, 32},
    {"capacity.pipeline", K_TRIBOOL, F(pipeline), 0, 0, 0},
    {"onnx.intra_op_threads", K_INT, F(intra_op_threads), 0, 0, 256},
    {"onnx.thread_affinity", K_AFFINITY, F(thread_affinity), 0, 0, 1023},
    {"onnx.optimized_model_dir", K_STR, S(ort_cache_dir), 0, 0},
    {"onnx.provider", K_PROVIDER, F(provider), 0, 0, 0},
    {"onnx.fallback", K_FALLBACK, F(fallback_cpu), 0, 0, 0},
    {"onnx.uint8_io", K_TRIBOOL, F(uint8_io), 0, 0, 0},
    {"onnx.cuda.device_ids", K_DEVICES, F(cuda_device_ids), 0, 0, SRV_MAX_CUDA_DEVICES - 1},
    {"onnx.cuda.memory_limit_gb", K_DOUBLE, F(cuda_memory_limit_gb), 0, 0, 1 << 20},
    {"onnx.cuda.cudnn_conv_algo_search", K_CUDNN, F(cudnn_search), 0, 0, 0},
    {"onnx.cuda.tf32", K_TRIBOOL, F(cuda_tf32), 0, 0, 0},
    {"onnx.cuda.cuda_graph", K_TRIBOOL, F(cuda_graph), 0, 0, 0},
    {"onnx.cuda.provider_library", K_STR, S(cuda_provider_lib), 0, 0},
    {"onnx.cuda.api", K_CUDA_API, F(cuda_api), 0, 0, 0},
    {"onnx.cuda.device_tensors", K_BOOL, F(cuda_device_tensors), 0, 0, 0},
    {"output.jpeg_quality", K_INT, F(jpeg_quality), 0, 1, 100},
    {"testing.enable_sleep_method", K_BOOL, F(testing_enable_sleep), 0, 0, 0},
    {"stream.max_sessions", K_INT, F(stream_max_sessions), 0, 0, 4096},
    {"stream.max_sessions_per_model", K_INT, F(stream_max_sessions_per_model), 0, 1, 4096},
    {"stream.max_batch", K_INT, F(stream_max_batch), 0, 1, 32},
    {"stream.max_wait_us", K_INT, F(stream_max_wait_us), 0, 0, 1000000},
    {"stream.encoder_max_wait_us", K_INT, F(stream_encoder_max_wait_us), 0, 0, 20000},
    {"stream.queue_limit", K_INT, F(stream_queue_limit), 0, 2, 256},
    {"stream.stalled_send_ms", K_INT, F(stream_stalled_send_ms), 0, 100, 600000},
    {"stream.workers", K_INT, F(stream_workers), 0, 1, 16},
};
#undef F
#undef S

static const char *const SECTIONS[] = {"server", "server.keepalive", "server.tls", "server.auth",
                                       "logging", "capacity", "onnx", "onnx.cuda", "output", "testing",
                                       "stream"};

/* The `models:` entry keys; offsets into srv_model_cfg. */
#define M(field) offsetof(srv_model_cfg, field), sizeof(((srv_model_cfg *)0)->field)
static const key_def MODEL_KEYS[] = {
    {"model_path", K_STR, M(model_path), 0, 0},
    {"background_dir", K_STR, M(background_dir), 0, 0},
    {"source_video", K_STR, M(source_video), 0, 0},
    {"crop_rects_path", K_STR, M(crop_rects_path), 0, 0},
    {"num_frames", K_INT, M(num_frames), 0, 1000000},
    {"preload_backgrounds", K_BOOL, M(preload_backgrounds), 0, 0},
    {"preload_model", K_BOOL, M(preload_model), 0, 0},
    {"provider", K_PROVIDER, M(provider), 0, 0},
};
#undef M

typedef struct {
    yaml_document_t *doc;
    const char *name;
    ls_err *err;
    int port; /* server.port, applied after the walk so key order does not matter */
} walk_ctx;

void srv_config_defaults(srv_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:50053");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->worker_count = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;
    cfg->queue_depth = 2 * cfg->worker_count;
    cfg->max_message_size_mb = 100;
    cfg->keepalive_time_ms = 2 * 3600 * 1000;
    cfg->keepalive_timeout_ms = 20000;
    cfg->keepalive_permit_without_calls = false;
    cfg->keepalive_min_ping_interval_ms = 300000;
    cfg->shutdown_grace_ms = 10000;
    cfg->auth_exempt_health = true;
    cfg->log_level = SRV_LOG_INFO;
    cfg->log_ring = 4096;
#ifdef LS_DEFAULT_AVATARS_ROOT
    snprintf(cfg->avatars_root, sizeof cfg->avatars_root, "%s", LS_DEFAULT_AVATARS_ROOT);
#else
    snprintf(cfg->avatars_root, sizeof cfg->avatars_root, "avatars");
#endif
#ifdef LS_DEFAULT_ORT_CACHE_DIR
    snprintf(cfg->ort_cache_dir, sizeof cfg->ort_cache_dir, "%s", LS_DEFAULT_ORT_CACHE_DIR);
#endif
#ifdef LS_DEFAULT_AUDIO_ENCODER
    snprintf(cfg->audio_encoder, sizeof cfg->audio_encoder, "%s", LS_DEFAULT_AUDIO_ENCODER);
#else
    snprintf(cfg->audio_encoder, sizeof cfg->audio_encoder, "models/ave_encoder.onnx");
#endif
    cfg->max_models = 8;
    cfg->max_memory_gb = 8.0;
    cfg->eviction_policy = SRV_EVICT_LFU;
    cfg->intra_op_threads = 1;
    cfg->jpeg_quality = 75;
    cfg->max_batch = 32;
    cfg->max_frame_width = 1920;
    cfg->max_frame_height = 1080;
    cfg->max_audio_seconds = 60.0;
    cfg->stream_max_sessions = 16;
    cfg->stream_max_sessions_per_model = 8;
    cfg->stream_max_batch = 8;
    cfg->stream_max_wait_us = 4000;
    cfg->stream_encoder_max_wait_us = 1000;
    cfg->stream_queue_limit = 32;
    cfg->stream_stalled_send_ms = 1000;
    cfg->stream_workers = 1;
    cfg->provider = ORT_EP_CPU;
    cfg->uint8_io = -1;
    cfg->pipeline = -1;
    cfg->n_cuda_devices = 1; /* device 0 */
    cfg->cudnn_search = ORT_CUDNN_EXHAUSTIVE;
    cfg->cuda_tf32 = -1;
    cfg->cuda_graph = -1;
    cfg->cuda_api = ORT_CUDA_API_AUTO;
    cfg->cuda_device_tensors = true;
}

void srv_config_free(srv_config *cfg) {
    free(cfg->models);
    cfg->models = NULL;
    cfg->n_models = 0;
}

const char *srv_log_level_name(srv_log_level level) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return (unsigned)level < 4 ? names[level] : "?";
}

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static int fail_at(walk_ctx *w, const yaml_node_t *n, const char *path, const char *fmt,
                   const char *arg) {
    char why[256];
    snprintf(why, sizeof why, fmt, arg);
    return ls_fail(w->err, LS_EINVAL, "%s:%d: %s: %s", w->name, line_of(n), path, why);
}

/* Quoted scalars are strings: `port: "80"` is a type error, as in the Go server's YAML decoder. */
static int parse_long(const yaml_node_t *n, long *out) {
    if (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
        n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        return -1;
    const char *s = (const char *)n->data.scalar.value;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_double(const yaml_node_t *n, double *out) {
    if (n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
        n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        return -1;
    const char *s = (const char *)n->data.scalar.value;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || v != v) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const yaml_node_t *n, bool *out) {
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return -1;
    const char *s = (const char *)n->data.scalar.value;
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) { *out = true; return 0; }
        if (!strcasecmp(s, no[i])) { *out = false; return 0; }
    }
    return -1;
}

/* Stores one scalar `n` for key `k` into the struct at `base`. */
static int set_devices(walk_ctx *w, const key_def *k, const char *path, const yaml_node_t *n, srv_config *cfg) {
    const yaml_node_t *items[SRV_MAX_CUDA_DEVICES + 1];
    int n_items = 0;
    if (n->type == YAML_SCALAR_NODE) items[n_items++] = n;
    else if (n->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
            if (n_items == SRV_MAX_CUDA_DEVICES) return fail_at(w, n, path, "more than %s devices", "16");
            items[n_items++] = yaml_document_get_node(w->doc, *i);
        }
    else return fail_at(w, n, path, "expected a list of GPU numbers%s", "");
    if (n_items == 0) return fail_at(w, n, path, "lists no GPU%s", "");
    for (int i = 0; i < n_items; i++) {
        long v;
        if (items[i]->type != YAML_SCALAR_NODE || parse_long(items[i], &v) || v < k->min || v > k->max)
            return fail_at(w, items[i], path, "expected GPU numbers 0..%s", "15");
        for (int j = 0; j < i; j++)
            if (cfg->cuda_device_ids[j] == v) return fail_at(w, items[i], path, "GPU listed twice%s", "");
        cfg->cuda_device_ids[i] = (int)v;
    }
    cfg->n_cuda_devices = n_items;
    return 0;
}

/* onnx.thread_affinity: none | auto | [CPU, ...] (a list means auto over exactly those CPUs). */
static int set_affinity(walk_ctx *w, const key_def *k, const char *path, const yaml_node_t *n, srv_config *cfg) {
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = (const char *)n->data.scalar.value;
        if (!strcmp(s, "none")) cfg->thread_affinity = SRV_AFFINITY_NONE;
        else if (!strcmp(s, "auto")) cfg->thread_affinity = SRV_AFFINITY_AUTO;
        else return fail_at(w, n, path, "expected none, auto or a list of CPU numbers, got '%s'", s);
        cfg->n_affinity_cpus = 0;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE) return fail_at(w, n, path, "expected none, auto or a list of CPU numbers%s", "");
    int count = 0;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        const yaml_node_t *item = yaml_document_get_node(w->doc, *i);
        long v;
        if (count == SRV_MAX_AFFINITY_CPUS) return fail_at(w, n, path, "more than %s CPUs", "256");
        if (item->type != YAML_SCALAR_NODE || parse_long(item, &v) || v < k->min || v > k->max)
            return fail_at(w, item, path, "expected CPU numbers 0..%s", "1023");
        for (int j = 0; j < count; j++)
            if (cfg->affinity_cpus[j] == v) return fail_at(w, item, path, "CPU listed twice%s", "");
        cfg->affinity_cpus[count++] = (int)v;
    }
    if (count == 0) return fail_at(w, n, path, "lists no CPU (say none to turn pinning off)%s", "");
    cfg->n_affinity_cpus = count;
    cfg->thread_affinity = SRV_AFFINITY_AUTO;
    return 0;
}

static int set_value(walk_ctx *w, const key_def *k, const char *path, const yaml_node_t *n,
                     void *base) {
    if (k->type == K_DEVICES) return set_devices(w, k, path, n, base);
    if (k->type == K_AFFINITY) return set_affinity(w, k, path, n, base);
    if (n->type != YAML_SCALAR_NODE) return fail_at(w, n, path, "expected a %s, not a list or map",
                                                    k->type == K_STR ? "string" : "scalar");
    const char *s = (const char *)n->data.scalar.value;
    char *field = (char *)base + k->off;
    long lv;
    double dv;
    switch (k->type) {
    case K_STR:
        if (n->data.scalar.length >= k->size) return fail_at(w, n, path, "longer than %s bytes",
                                                             k->size == 256 ? "255" : "1023");
        if (memchr(s, 0, n->data.scalar.length)) return fail_at(w, n, path, "contains NUL%s", "");
        memcpy(field, s, n->data.scalar.length + 1);
        return 0;
    case K_INT:
        if (parse_long(n, &lv)) return fail_at(w, n, path, "expected an integer, got '%s'", s);
        if (lv < k->min || lv > k->max) {
            char range[64];
            snprintf(range, sizeof range, "%.0f..%.0f", k->min, k->max);
            return fail_at(w, n, path, "out of range (allowed %s)", range);
        }
        *(int *)field = (int)lv;
        return 0;
    case K_PORT: {
        /* The Go server writes the port either as 50053 or as ":50053". */
        const char *d = s[0] == ':' ? s + 1 : s;
        if (!*d || strlen(d) > 5 || strspn(d, "0123456789") != strlen(d))
            return fail_at(w, n, path, "expected a port number, got '%s'", s);
        lv = atol(d);
        if (lv < 1 || lv > 65535) return fail_at(w, n, path, "out of range (allowed %s)", "1..65535");
        w->port = (int)lv;
        return 0;
    }
    case K_DOUBLE:
        if (parse_double(n, &dv)) return fail_at(w, n, path, "expected a number, got '%s'", s);
        if (dv < k->min || dv > k->max) return fail_at(w, n, path, "out of range%s", "");
        if (k->off == offsetof(srv_config, shutdown_grace_ms)) *(int *)field = (int)(dv * 1000.0);
        else *(double *)field = dv;
        return 0;
    case K_BOOL:
        if (parse_bool(n, (bool *)field)) return fail_at(w, n, path, "expected true or false, got '%s'", s);
        return 0;
    case K_LOGLEVEL:
        for (int i = 0; i < 4; i++)
            if (!strcasecmp(s, srv_log_level_name((srv_log_level)i))) { *(int *)field = i; return 0; }
        return fail_at(w, n, path, "expected error|warn|info|debug, got '%s'", s);
    case K_EVICT:
        if (!strcasecmp(s, "lfu")) *(srv_eviction *)field = SRV_EVICT_LFU;
        else if (!strcasecmp(s, "lru")) *(srv_eviction *)field = SRV_EVICT_LRU;
        else if (!strcasecmp(s, "none")) *(srv_eviction *)field = SRV_EVICT_NONE;
        else return fail_at(w, n, path, "expected lfu|lru|none, got '%s'", s);
        return 0;
    case K_PROVIDER: {
        ort_ep_kind kind;
        if (ort_ep_kind_parse(s, &kind)) return fail_at(w, n, path, "expected cpu|cuda, got '%s'", s);
        *(int *)field = (int)kind;
        return 0;
    }
    case K_FALLBACK:
        if (!strcmp(s, "cpu")) *(bool *)field = true;
        else if (!strcmp(s, "none")) *(bool *)field = false;
        else return fail_at(w, n, path, "expected none|cpu, got '%s'", s);
        return 0;
    case K_CUDNN:
        if (ort_cudnn_search_parse(s, (ort_cudnn_search *)field))
            return fail_at(w, n, path, "expected exhaustive|heuristic|default, got '%s'", s);
        return 0;
    case K_TRIBOOL: {
        bool b;
        if (parse_bool(n, &b)) return fail_at(w, n, path, "expected true or false, got '%s'", s);
        *(int *)field = b;
        return 0;
    }
    case K_CUDA_API:
        if (ort_cuda_api_parse(s, (ort_cuda_api *)field))
            return fail_at(w, n, path, "expected auto|ep_device|classic, got '%s'", s);
        return 0;
    case K_DEVICES:
    case K_AFFINITY: break; /* handled above */
    }
    return fail_at(w, n, path, "internal: bad key type%s", "");
}

static int valid_id(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > SRV_CFG_ID_MAX || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static int walk_model(walk_ctx *w, srv_config *cfg, const char *id, const yaml_node_t *key,
                      const yaml_node_t *val) {
    char path[512];
    snprintf(path, sizeof path, "models.%s", id);
    if (!valid_id(id)) return fail_at(w, key, path, "model id must match %s", "[A-Za-z0-9_.-]{1,64}");
    if (val->type != YAML_MAPPING_NODE) return fail_at(w, val, path, "expected a mapping%s", "");
    for (int i = 0; i < cfg->n_models; i++)
        if (!strcmp(cfg->models[i].id, id)) return fail_at(w, key, path, "duplicate model id%s", "");
    srv_model_cfg *grown = realloc(cfg->models, sizeof *grown * (size_t)(cfg->n_models + 1));
    if (!grown) return ls_fail(w->err, LS_ENOMEM, "config: out of memory");
    cfg->models = grown;
    srv_model_cfg *m = &cfg->models[cfg->n_models++];
    memset(m, 0, sizeof *m);
    m->provider = -1;
    snprintf(m->id, sizeof m->id, "%s", id);
    m->line = line_of(key);
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) return fail_at(w, k, path, "keys must be strings%s", "");
        char kpath[600];
        snprintf(kpath, sizeof kpath, "%s.%s", path, (const char *)k->data.scalar.value);
        const key_def *def = NULL;
        for (size_t j = 0; j < sizeof MODEL_KEYS / sizeof *MODEL_KEYS; j++)
            if (!strcmp(MODEL_KEYS[j].path, (const char *)k->data.scalar.value)) def = &MODEL_KEYS[j];
        if (!def) return fail_at(w, k, kpath, "unknown key%s", "");
        if (set_value(w, def, kpath, v, m)) return -1;
    }
    if (!m->model_path[0]) return fail_at(w, key, path, "model_path is required%s", "");
    if (!!m->background_dir[0] == !!m->source_video[0])
        return fail_at(w, key, path, "set exactly one of background_dir and source_video%s", "");
    return 0;
}

static int walk_mapping(walk_ctx *w, srv_config *cfg, const yaml_node_t *map, const char *prefix) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        if (k->type != YAML_SCALAR_NODE) return fail_at(w, k, prefix[0] ? prefix : "(top)",
                                                        "keys must be strings%s", "");
        char path[512];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "",
                 (const char *)k->data.scalar.value);
        const key_def *def = NULL;
        for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS; i++)
            if (!strcmp(KEYS[i].path, path)) def = &KEYS[i];
        if (def) {
            if (set_value(w, def, path, v, cfg)) return -1;
            continue;
        }
        if (!strcmp(path, "models")) {
            if (v->type == YAML_SCALAR_NODE && !v->data.scalar.value[0]) continue; /* `models:` */
            if (v->type != YAML_MAPPING_NODE) return fail_at(w, v, path, "expected a mapping of id: {...}%s", "");
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
                yaml_node_t *id = yaml_document_get_node(w->doc, q->key);
                if (id->type != YAML_SCALAR_NODE) return fail_at(w, id, path, "model ids must be strings%s", "");
                if (walk_model(w, cfg, (const char *)id->data.scalar.value, id,
                               yaml_document_get_node(w->doc, q->value)))
                    return -1;
            }
            continue;
        }
        int section = 0;
        for (size_t i = 0; i < sizeof SECTIONS / sizeof *SECTIONS; i++)
            if (!strcmp(SECTIONS[i], path)) section = 1;
        if (!section) return fail_at(w, k, path, "unknown key%s", "");
        if (v->type == YAML_SCALAR_NODE && !v->data.scalar.value[0]) continue; /* empty section */
        if (v->type != YAML_MAPPING_NODE) return fail_at(w, v, path, "expected a mapping%s", "");
        if (walk_mapping(w, cfg, v, path)) return -1;
    }
    return 0;
}

/* Replaces the port of cfg->listen ("host:port" or "[v6]:port"). */
static int set_port(srv_config *cfg, int port, ls_err *err) {
    char *colon = strrchr(cfg->listen, ':');
    char *bracket = strrchr(cfg->listen, ']');
    if (!colon || (bracket && colon < bracket))
        return ls_fail(err, LS_EINVAL, "listen address '%s' has no port", cfg->listen);
    size_t host_len = (size_t)(colon - cfg->listen);
    char buf[sizeof cfg->listen];
    snprintf(buf, sizeof buf, "%.*s:%d", (int)host_len, cfg->listen, port);
    memcpy(cfg->listen, buf, sizeof buf);
    return 0;
}

int srv_config_set_listen(srv_config *cfg, const char *addr, ls_err *err) {
    if (!addr || !addr[0] || strlen(addr) >= sizeof cfg->listen)
        return ls_fail(err, LS_EINVAL, "listen address must be host:port (1..255 bytes)");
    const char *colon = strrchr(addr, ':');
    const char *bracket = strrchr(addr, ']');
    if (!colon || (bracket && colon < bracket) || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) < 0 ||
        atoi(colon + 1) > 65535)
        return ls_fail(err, LS_EINVAL, "listen address '%s' must be host:port", addr);
    if (colon == addr) snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1%s", addr);
    else snprintf(cfg->listen, sizeof cfg->listen, "%s", addr);
    return 0;
}

int srv_config_parse(srv_config *cfg, const char *text, size_t len, const char *name, ls_err *err) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return ls_fail(err, LS_ENOMEM, "config: out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        ls_fail(err, LS_EINVAL, "%s:%d: YAML syntax error: %s %s", name,
                (int)parser.problem_mark.line + 1, parser.problem ? parser.problem : "",
                parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -1;
    }
    walk_ctx w = {&doc, name, err, 0};
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !(root->type == YAML_SCALAR_NODE && !root->data.scalar.value[0])) {
        if (root->type != YAML_MAPPING_NODE) rc = fail_at(&w, root, "(top)", "expected a mapping%s", "");
        else rc = walk_mapping(&w, cfg, root, "");
    }
    if (!rc && w.port) rc = set_port(cfg, w.port, err);
    /* ORT pins a pool only when its size is set: auto needs a thread count of our own. */
    if (!rc && cfg->thread_affinity != SRV_AFFINITY_NONE && cfg->intra_op_threads < 1)
        rc = ls_fail(err, LS_EINVAL, "%s: onnx.thread_affinity: needs onnx.intra_op_threads >= 1 (0 leaves the "
                     "pool to ONNX Runtime, which then places its threads itself)", name);
    if (!rc && !!cfg->tls_cert[0] != !!cfg->tls_key[0])
        rc = ls_fail(err, LS_EINVAL, "%s: server.tls: set both cert and key, or neither", name);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int srv_config_load(srv_config *cfg, const char *path, ls_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ls_fail(err, LS_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (16u << 20)) { free(buf); fclose(f); return ls_fail(err, LS_EINVAL, "%s: larger than 16 MiB", path); }
            char *grown = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!grown) { free(buf); fclose(f); return ls_fail(err, LS_ENOMEM, "%s: out of memory", path); }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (!got) break;
        len += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return ls_fail(err, LS_EIO, "%s: read error", path); }
    int rc = srv_config_parse(cfg, buf, len, path, err);
    free(buf);
    return rc;
}
