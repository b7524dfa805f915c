/* ort_model.c - ORT session per model file and validation of its inputs/outputs against the role.
 * The per-worker bindings that run it are in ort_binding.c. */
#include "infer/ort_model_priv.h"

#include "infer/onnx_wrap.h"
#include "infer/ort_affinity.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define F32 ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT
#define U8 ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8
const role_spec ORT_ROLE_SPECS[ORT_ROLE_COUNT] = {
    [ORT_ROLE_ENCODER] = {1, {{"mel_spectrogram", F32, 4, {-1, 1, 80, 16}}}, {"audio_features", F32, 2, {-1, 512}}},
    [ORT_ROLE_UNET] = {2,
                       {{"input", F32, 4, {-1, 6, 320, 320}}, {"audio", F32, 4, {-1, 32, 16, 16}}},
                       {"output", F32, 4, {-1, 3, 320, 320}}},
    [ORT_ROLE_UNET_U8] = {2,
                          {{"crop_u8", U8, 4, {-1, 328, 328, 3}}, {"audio", F32, 4, {-1, 32, 16, 16}}},
                          {"output_u8", U8, 4, {-1, 320, 320, 3}}},
};
#undef F32
#undef U8

size_t ort_spec_elems(const tensor_spec *t) {
    size_t n = 1;
    for (int i = 1; i < t->rank; i++) n *= (size_t)t->dims[i];
    return n;
}

size_t ort_spec_elem_size(const tensor_spec *t) {
    return t->type == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 ? 1 : sizeof(float);
}

int ort_role_input_count(ort_role role) { return ORT_ROLE_SPECS[role].n_in; }
size_t ort_role_input_elems(ort_role role, int i) { return ort_spec_elems(&ORT_ROLE_SPECS[role].in[i]); }
size_t ort_role_output_elems(ort_role role) { return ort_spec_elems(&ORT_ROLE_SPECS[role].out); }
size_t ort_role_input_bytes(ort_role role, int i) {
    const tensor_spec *t = &ORT_ROLE_SPECS[role].in[i];
    return ort_spec_elems(t) * ort_spec_elem_size(t);
}
size_t ort_role_output_bytes(ort_role role) {
    const tensor_spec *t = &ORT_ROLE_SPECS[role].out;
    return ort_spec_elems(t) * ort_spec_elem_size(t);
}
const char *ort_role_name(ort_role role) { return role == ORT_ROLE_ENCODER ? "audio encoder" : "UNet"; }

/* Formats a spec as "[B,1,80,16]" for messages. */
static const char *spec_str(const tensor_spec *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[B");
    for (int i = 1; i < t->rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, ",%lld", (long long)t->dims[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* Checks one tensor's type and shape against its spec; updates *batch (0 = none seen, -1 = dynamic). */
static int check_tensor(ort_model *m, OrtTypeInfo *ti, const tensor_spec *want, const char *kind, int64_t *batch,
                        ls_err *err) {
    const OrtApi *api = m->api;
    const OrtTensorTypeAndShapeInfo *info = NULL;
    ONNXTensorElementDataType type;
    size_t rank = 0;
    int64_t dims[8];
    char sbuf[64];
    if (ort_check(m->rt, api->CastTypeInfoToTensorInfo(ti, &info), err, "reading tensor info") != 0) return -1;
    if (!info) return ls_fail(err, LS_EMODEL, "%s: %s '%s' is not a tensor", m->path, kind, want->name);
    if (ort_check(m->rt, api->GetTensorElementType(info, &type), err, "reading element type") != 0 ||
        ort_check(m->rt, api->GetDimensionsCount(info, &rank), err, "reading rank") != 0)
        return -1;
    if (type != want->type)
        return ls_fail(err, LS_EMODEL, "%s: %s '%s' has element type %d, expected %s", m->path, kind, want->name,
                       (int)type, want->type == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 ? "uint8" : "float32");
    if ((int)rank != want->rank)
        return ls_fail(err, LS_EMODEL, "%s: %s '%s' has rank %zu, expected %d %s", m->path, kind, want->name, rank,
                       want->rank, spec_str(want, sbuf, sizeof sbuf));
    if (ort_check(m->rt, api->GetDimensions(info, dims, rank), err, "reading dimensions") != 0) return -1;
    for (size_t i = 1; i < rank; i++) {
        /* A symbolic (-1) dimension accepts ours; a fixed one must match. */
        if (dims[i] != -1 && dims[i] != want->dims[i])
            return ls_fail(err, LS_EMODEL, "%s: %s '%s' dimension %zu is %lld, expected %lld (shape %s)", m->path,
                           kind, want->name, i, (long long)dims[i], (long long)want->dims[i],
                           spec_str(want, sbuf, sizeof sbuf));
    }
    if (dims[0] == 0 || dims[0] < -1)
        return ls_fail(err, LS_EMODEL, "%s: %s '%s' has batch dimension %lld", m->path, kind, want->name,
                       (long long)dims[0]);
    if (dims[0] > 0) {
        if (*batch > 0 && *batch != dims[0])
            return ls_fail(err, LS_EMODEL, "%s: %s '%s' has batch %lld but another tensor has %lld", m->path, kind,
                           want->name, (long long)dims[0], (long long)*batch);
        *batch = dims[0];
    }
    return 0;
}

/* Looks for the tensor named want->name among the session's inputs (or outputs) and checks it. */
static int check_io(ort_model *m, int outputs, const tensor_spec *want, int64_t *batch, ls_err *err) {
    const OrtApi *api = m->api;
    OrtAllocator *alloc = NULL;
    size_t count = 0;
    const char *kind = outputs ? "output" : "input";
    if (ort_check(m->rt, api->GetAllocatorWithDefaultOptions(&alloc), err, "getting ORT's allocator") != 0) return -1;
    OrtStatus *st = outputs ? api->SessionGetOutputCount(m->session, &count)
                            : api->SessionGetInputCount(m->session, &count);
    if (ort_check(m->rt, st, err, "counting model tensors") != 0) return -1;
    char names[256] = "";
    for (size_t i = 0; i < count; i++) {
        char *name = NULL;
        st = outputs ? api->SessionGetOutputName(m->session, i, alloc, &name)
                     : api->SessionGetInputName(m->session, i, alloc, &name);
        if (ort_check(m->rt, st, err, "reading a tensor name") != 0) return -1;
        int match = strcmp(name, want->name) == 0;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s'%s'", used ? ", " : "", name);
        OrtStatus *freed = api->AllocatorFree(alloc, name);
        if (freed) api->ReleaseStatus(freed); /* nothing useful to do about it */
        if (!match) continue;
        OrtTypeInfo *ti = NULL;
        st = outputs ? api->SessionGetOutputTypeInfo(m->session, i, &ti)
                     : api->SessionGetInputTypeInfo(m->session, i, &ti);
        if (ort_check(m->rt, st, err, "reading tensor type") != 0) return -1;
        int rc = check_tensor(m, ti, want, kind, batch, err);
        api->ReleaseTypeInfo(ti);
        return rc;
    }
    char sbuf[64];
    return ls_fail(err, LS_EMODEL, "%s: not a SyncTalk_2D %s: no %s named '%s' %s (it has %s)", m->path,
                   ort_role_name(m->role), kind, want->name, spec_str(want, sbuf, sizeof sbuf),
                   names[0] ? names : "none");
}

static int validate(ort_model *m, ls_err *err) {
    const role_spec *spec = &ORT_ROLE_SPECS[m->role];
    size_t n_in = 0;
    if (ort_check(m->rt, m->api->SessionGetInputCount(m->session, &n_in), err, "counting inputs") != 0) return -1;
    int64_t batch = 0;
    for (int i = 0; i < spec->n_in; i++)
        if (check_io(m, 0, &spec->in[i], &batch, err) != 0) return -1;
    /* Every input must be fed, so an extra one (all expected ones being present) is an error. */
    if ((int)n_in != spec->n_in)
        return ls_fail(err, LS_EMODEL, "%s: has %zu inputs, a SyncTalk_2D %s has %d", m->path, n_in,
                       ort_role_name(m->role), spec->n_in);
    if (check_io(m, 1, &spec->out, &batch, err) != 0) return -1;
    m->batch = batch > 0 ? (int)batch : 0;
    return 0;
}

static GraphOptimizationLevel ort_level(ort_opt_level l) {
    switch (l) {
    case ORT_OPT_NONE: return ORT_DISABLE_ALL;
    case ORT_OPT_BASIC: return ORT_ENABLE_BASIC;
    case ORT_OPT_EXTENDED: return ORT_ENABLE_EXTENDED;
    case ORT_OPT_DEFAULT:
    case ORT_OPT_ALL: break;
    }
    return ORT_ENABLE_ALL;
}

/* Creates the session from `file` (or from `bytes` when not NULL); `save_to` (may be NULL) receives the
 * optimised graph. A provider that cannot be added fails through err (returns -1); ORT failures come
 * back as *status. */
static int open_session(ort_model *m, const char *file, const void *bytes, size_t n_bytes, const ort_model_opts *o,
                        GraphOptimizationLevel level, const char *save_to, OrtStatus **status, ls_err *err) {
    const OrtApi *api = m->api;
    OrtSessionOptions *so = NULL;
    OrtStatus *st = api->CreateSessionOptions(&so);
    *status = NULL;
    if (st) return *status = st, 0;
    if (ort_ep_append(m->rt, so, o->ep, m->ep_desc, sizeof m->ep_desc, err) != 0) {
        api->ReleaseSessionOptions(so);
        return -1;
    }
    if (!st && o->intra_threads > 0) st = api->SetIntraOpNumThreads(so, o->intra_threads);
    if (!st && o->inter_threads > 0) st = api->SetInterOpNumThreads(so, o->inter_threads);
    if (!st) st = api->SetSessionGraphOptimizationLevel(so, level);
    if (!st && o->no_spin) st = api->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", "0");
    if (!st && o->no_spin) st = api->AddSessionConfigEntry(so, "session.inter_op.allow_spinning", "0");
    if (!st && o->pool_cpus && o->n_pool_cpus > 0) {
        char aff[ORT_AFF_MAX_CPUS * 6]; /* checked by check_affinity */
        ort_aff_string(o->pool_cpus, o->n_pool_cpus, aff, sizeof aff);
        st = api->AddSessionConfigEntry(so, "session.intra_op_thread_affinities", aff);
    }
    /* On the CPU, ORT's memory pattern (one block per input shape, planned from the first runs)
     * made the first two runs of each batch size 10-15x slower in lipsyncd (page faults of a
     * block per shape: 33 s and 23 s then 2.1 s for 25 frames) and held 9.7 GB instead of 5.9 GB;
     * without it, 15 s then 2.0 s then 1.1 s. The arena still reuses its memory. */
    if (!st && (!o->ep || o->ep->kind == ORT_EP_CPU)) st = api->DisableMemPattern(so);
    /* The runtime's one CPU arena instead of a session's own (ort_runtime.h says why). */
    if (!st && (!o->ep || o->ep->kind == ORT_EP_CPU) && ort_runtime_shared_cpu_arena(m->rt))
        st = api->AddSessionConfigEntry(so, "session.use_env_allocators", "1");
    if (!st && save_to) st = api->SetOptimizedModelFilePath(so, save_to);
    int gpu = o->ep && o->ep->kind == ORT_EP_CUDA; /* loading allocates on the GPU: not during a capture */
    if (gpu) ort_runtime_gpu_lock(m->rt, 0);
    if (!st && bytes) st = api->CreateSessionFromArray(ort_runtime_env(m->rt), bytes, n_bytes, so, &m->session);
    else if (!st) st = api->CreateSession(ort_runtime_env(m->rt), file, so, &m->session);
    if (gpu) ort_runtime_gpu_unlock(m->rt);
    api->ReleaseSessionOptions(so);
    *status = st;
    return 0;
}

/* Reads the UNet file and wraps it for uint8 input/output (onnx_wrap.h); *bytes is malloc'd. */
static int wrap_u8(const char *path, void **bytes, size_t *n, ls_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ls_fail(err, LS_EIO, "cannot read UNet model '%s'", path);
    void *file = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    int rc = -1;
    if (size <= 0 || fseek(f, 0, SEEK_SET) != 0) ls_fail(err, LS_EIO, "cannot read UNet model '%s'", path);
    else if (!(file = malloc((size_t)size))) ls_fail(err, LS_ENOMEM, "no memory to read '%s'", path);
    else if (fread(file, 1, (size_t)size, f) != (size_t)size) ls_fail(err, LS_EIO, "short read of '%s'", path);
    else rc = onnx_wrap_unet_u8(file, (size_t)size, bytes, n, err);
    fclose(f);
    free(file);
    return rc == 0 ? 0 : ls_wrap(err, "uint8 I/O for '%s'", path);
}

/* ORT wants exactly one affinity per pool thread, and a fixed pool size to go with it. */
static int check_affinity(const ort_model_opts *o, const char *path, ls_err *err) {
    if (!o->pool_cpus) return 0;
    char aff[ORT_AFF_MAX_CPUS * 6];
    if (o->intra_threads < 1 || o->n_pool_cpus != o->intra_threads - 1)
        return ls_fail(err, LS_EINVAL, "'%s': %d pool CPUs given for %d intra-op threads (need threads - 1)", path,
                       o->n_pool_cpus, o->intra_threads);
    if (o->n_pool_cpus > ORT_AFF_MAX_CPUS || ort_aff_string(o->pool_cpus, o->n_pool_cpus, aff, sizeof aff) != 0)
        return ls_fail(err, LS_EINVAL, "'%s': pool CPUs out of range 0..%d", path, ORT_AFF_MAX_CPUS - 1);
    if (o->ep && o->ep->kind != ORT_EP_CPU)
        return ls_fail(err, LS_EINVAL, "'%s': thread affinity is for CPU sessions", path);
    return 0;
}

static int newer_or_same(const struct stat *a, const struct stat *b) {
    return a->st_mtim.tv_sec > b->st_mtim.tv_sec ||
           (a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec >= b->st_mtim.tv_nsec);
}

ort_model *ort_model_load(ort_runtime *rt, const char *path, ort_role role, const ort_model_opts *opts,
                          ls_err *err) {
    static const ort_model_opts defaults = {0};
    const ort_model_opts *o = opts ? opts : &defaults;
    if (!rt || !path || (role != ORT_ROLE_ENCODER && role != ORT_ROLE_UNET)) {
        ls_fail(err, LS_EINVAL, "ort_model_load: bad arguments");
        return NULL;
    }
    if (check_affinity(o, path, err) != 0) return NULL;
    struct stat st_model;
    if (stat(path, &st_model) != 0) {
        ls_fail(err, LS_ENOTFOUND, "%s model '%s' not found", ort_role_name(role), path);
        return NULL;
    }
    if (!S_ISREG(st_model.st_mode)) {
        ls_fail(err, LS_EFORMAT, "%s model '%s' is not a regular file", ort_role_name(role), path);
        return NULL;
    }
    ort_model *m = calloc(1, sizeof *m);
    if (!m) {
        ls_fail(err, LS_ENOMEM, "allocating model '%s'", path);
        return NULL;
    }
    m->rt = rt;
    m->api = ort_runtime_api(rt);
    m->role = role;
    pthread_mutex_init(&m->graph_mu, NULL);
    m->file_bytes = (size_t)st_model.st_size;
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->ep_desc, sizeof m->ep_desc, "cpu");
    if (o->ep) {
        m->ep = *o->ep;
        m->ep.provider_lib = NULL;
    }
    int on_cuda = m->ep.kind == ORT_EP_CUDA;
    /* The cache holds a CPU-optimised graph: a CUDA session or a wrapped model must not use it. */
    const char *cache = on_cuda || o->uint8_io ? NULL : o->optimized_path;
    void *bytes = NULL;
    size_t n_bytes = 0;
    if (o->uint8_io) {
        if (role != ORT_ROLE_UNET) {
            ls_fail(err, LS_EINVAL, "uint8 input/output is for UNets only ('%s')", path);
            goto fail;
        }
        if (wrap_u8(path, &bytes, &n_bytes, err) != 0) goto fail;
        m->role = ORT_ROLE_UNET_U8;
    }
    OrtStatus *s = NULL;
    struct stat st_cache;
    if (cache && stat(cache, &st_cache) == 0 && newer_or_same(&st_cache, &st_model)) {
        /* Already optimised: running the optimisers again would only cost start-up time. */
        if (open_session(m, cache, NULL, 0, o, ORT_DISABLE_ALL, NULL, &s, err) != 0) goto fail;
        if (s) {
            m->api->ReleaseStatus(s); /* stale or foreign cache: rebuild it below */
            m->session = NULL;
        }
    }
    if (!m->session) {
        /* ORT writes the optimised graph while it creates the session; write it under a name of
         * our own and rename it into place, so a concurrent reader never sees half a file. */
        char tmp[4200];
        if (cache) snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%p", cache, (long)getpid(), (void *)m);
        int rc = open_session(m, path, bytes, n_bytes, o, ort_level(o->opt_level), cache ? tmp : NULL, &s, err);
        if (rc == 0 && s) { /* the provider was added (ep_desc says which): ORT refused the model */
            char what[1300];
            snprintf(what, sizeof what, "ONNX Runtime cannot load %s model '%s' on %s", ort_role_name(role), path,
                     m->ep_desc);
            rc = ort_check(rt, s, err, what);
        }
        if (rc != 0) {
            if (cache) unlink(tmp);
            goto fail;
        }
        if (cache && rename(tmp, cache) != 0) unlink(tmp); /* no cache: fine */
    }
    free(bytes);
    bytes = NULL;
    const OrtEpDevice *dev = NULL;
    if (on_cuda && m->ep.api != ORT_CUDA_API_CLASSIC && !m->ep.host_tensors)
        dev = ort_ep_cuda_device(rt, m->ep.device_id);
    if (dev && !(m->device_mem = m->api->EpDevice_MemoryInfo(dev, OrtDeviceMemoryType_DEFAULT)))
        snprintf(m->device_note, sizeof m->device_note, "the CUDA provider reports no device memory");
    /* What the session really does (ort_ep_append's rule): bindings follow it. */
    m->ep.cuda_graph = dev && m->ep.cuda_graph != 0;
    if (validate(m, err) != 0) goto fail;
    return m;
fail:
    free(bytes);
    ort_model_destroy(m);
    return NULL;
}

void ort_model_destroy(ort_model *m) {
    if (!m) return;
    if (m->session) {
        int gpu = m->ep.kind == ORT_EP_CUDA;
        if (gpu) ort_runtime_gpu_lock(m->rt, 0);
        m->api->ReleaseSession(m->session);
        if (gpu) ort_runtime_gpu_unlock(m->rt);
    }
    pthread_mutex_destroy(&m->graph_mu);
    free(m);
}

ort_role ort_model_role(const ort_model *m) { return m->role; }
const char *ort_model_path(const ort_model *m) { return m->path; }
int ort_model_batch(const ort_model *m) { return m->batch; }
size_t ort_model_bytes(const ort_model *m) { return m->file_bytes; }
ort_ep_kind ort_model_ep(const ort_model *m) { return m->ep.kind; }
int ort_model_device(const ort_model *m) { return m->ep.kind == ORT_EP_CUDA ? m->ep.device_id : -1; }
const char *ort_model_ep_desc(const ort_model *m) { return m->ep_desc; }

/* "TotalAllocated" of the session's allocator for memory `name` on `device`; 0 without stats. */
static size_t arena_bytes(const ort_model *m, const char *name, int device) {
    const OrtApi *api = m->api;
    OrtMemoryInfo *mi = NULL;
    OrtAllocator *a = NULL;
    OrtKeyValuePairs *kv = NULL;
    size_t bytes = 0;
    OrtStatus *st = api->CreateMemoryInfo(name, OrtArenaAllocator, device, OrtMemTypeDefault, &mi);
    if (!st) st = api->CreateAllocator(m->session, mi, &a);
    if (!st) st = api->AllocatorGetStats(a, &kv);
    if (!st) {
        const char *v = api->GetKeyValue(kv, "TotalAllocated");
        if (v) bytes = (size_t)strtoull(v, NULL, 10);
    }
    if (st) api->ReleaseStatus(st); /* no statistics (e.g. no arena): report 0 */
    if (kv) api->ReleaseKeyValuePairs(kv);
    if (a) api->ReleaseAllocator(a);
    if (mi) api->ReleaseMemoryInfo(mi);
    return bytes;
}

size_t ort_model_device_bytes(const ort_model *m) {
    /* "Cuda" is the name ORT's CUDA provider gives its device allocator. */
    size_t session = m->ep.kind == ORT_EP_CUDA ? arena_bytes(m, "Cuda", m->ep.device_id) : 0;
    return session + atomic_load(&m->bound_device_bytes);
}

size_t ort_model_host_bytes(const ort_model *m) { return arena_bytes(m, "Cpu", 0); }

void ort_model_stats_get(const ort_model *m, ort_model_stats *out) {
    out->runs = atomic_load(&m->runs);
    out->items = atomic_load(&m->items);
    out->run_ns = atomic_load(&m->run_ns);
    out->failures = atomic_load(&m->failures);
}

int ort_cache_path(const char *dir, const char *model_path, char *out, size_t cap) {
    char *real = realpath(model_path, NULL);
    if (!dir || !*dir || !real) {
        free(real);
        return -1;
    }
    /* FNV-1a of the model's real path: one cache file per model file, whatever path names it. */
    uint64_t h = 1469598103934665603u;
    for (const char *c = real; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211u;
    const char *base = strrchr(real, '/');
    int n = snprintf(out, cap, "%s/%.64s-%016llx.ort.onnx", dir, base ? base + 1 : real, (unsigned long long)h);
    free(real);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}
