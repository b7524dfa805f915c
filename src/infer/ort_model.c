/* ort_model.c - ORT session per model file, I/O validation against the role, per-worker bindings.
 *
 * Why Run() with pre-made OrtValues and not IoBinding: on the CPU execution provider both let ORT
 * read our inputs and write its output straight into caller memory (an OrtValue passed in
 * `outputs` is used as is). Run() keeps no per-call ORT state, so one set of tensor views per batch
 * size (made once, at binding creation) serves every call, and several workers can call Run on the
 * shared session at once. IoBinding would have to be re-bound whenever the batch size changes and
 * only pays off for device memory (a CUDA EP keeping outputs on the GPU); switching to it later is
 * local to this file. */
#include "infer/ort_model.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_INPUTS 2
#define MAX_BATCH_LIMIT 4096

typedef struct {
    const char *name;
    int rank;
    int64_t dims[4]; /* dims[0] is the batch and not checked here */
} tensor_spec;

typedef struct {
    int n_in;
    tensor_spec in[MAX_INPUTS];
    tensor_spec out;
} role_spec;

static const role_spec ROLE_SPECS[] = {
    [ORT_ROLE_ENCODER] = {1, {{"mel_spectrogram", 4, {-1, 1, 80, 16}}}, {"audio_features", 2, {-1, 512}}},
    [ORT_ROLE_UNET] = {2,
                       {{"input", 4, {-1, 6, 320, 320}}, {"audio", 4, {-1, 32, 16, 16}}},
                       {"output", 4, {-1, 3, 320, 320}}},
};

static size_t spec_elems(const tensor_spec *t) {
    size_t n = 1;
    for (int i = 1; i < t->rank; i++) n *= (size_t)t->dims[i];
    return n;
}

int ort_role_input_count(ort_role role) { return ROLE_SPECS[role].n_in; }
size_t ort_role_input_elems(ort_role role, int i) { return spec_elems(&ROLE_SPECS[role].in[i]); }
size_t ort_role_output_elems(ort_role role) { return spec_elems(&ROLE_SPECS[role].out); }
const char *ort_role_name(ort_role role) { return role == ORT_ROLE_ENCODER ? "audio encoder" : "UNet"; }

struct ort_model {
    ort_runtime *rt;
    const OrtApi *api;
    OrtSession *session;
    ort_role role;
    int batch; /* fixed batch, or 0 for dynamic */
    size_t file_bytes;
    char path[1024];
    _Atomic uint64_t runs, items, run_ns, failures;
};

/* Formats a spec as "[B,1,80,16]" for messages. */
static const char *spec_str(const tensor_spec *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[B");
    for (int i = 1; i < t->rank && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, ",%lld", (long long)t->dims[i]);
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
    if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
        return ls_fail(err, LS_EMODEL, "%s: %s '%s' has element type %d, expected float32", m->path, kind,
                       want->name, (int)type);
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
    const role_spec *spec = &ROLE_SPECS[m->role];
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

/* Creates the session from `file`; `save_to` (may be NULL) receives the optimised graph. */
static OrtStatus *open_session(ort_model *m, const char *file, const ort_model_opts *o, GraphOptimizationLevel level,
                               const char *save_to) {
    const OrtApi *api = m->api;
    OrtSessionOptions *so = NULL;
    OrtStatus *st = api->CreateSessionOptions(&so);
    if (st) return st;
    if (!st && o->intra_threads > 0) st = api->SetIntraOpNumThreads(so, o->intra_threads);
    if (!st && o->inter_threads > 0) st = api->SetInterOpNumThreads(so, o->inter_threads);
    if (!st) st = api->SetSessionGraphOptimizationLevel(so, level);
    if (!st && o->no_spin) st = api->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", "0");
    if (!st && o->no_spin) st = api->AddSessionConfigEntry(so, "session.inter_op.allow_spinning", "0");
    if (!st && save_to) st = api->SetOptimizedModelFilePath(so, save_to);
    if (!st) st = api->CreateSession(ort_runtime_env(m->rt), file, so, &m->session);
    api->ReleaseSessionOptions(so);
    return st;
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
    m->file_bytes = (size_t)st_model.st_size;
    snprintf(m->path, sizeof m->path, "%s", path);

    struct stat st_cache;
    if (o->optimized_path && stat(o->optimized_path, &st_cache) == 0 && newer_or_same(&st_cache, &st_model)) {
        /* Already optimised: running the optimisers again would only cost start-up time. */
        OrtStatus *s = open_session(m, o->optimized_path, o, ORT_DISABLE_ALL, NULL);
        if (s) {
            m->api->ReleaseStatus(s); /* stale or foreign cache: rebuild it below */
            m->session = NULL;
        }
    }
    if (!m->session) {
        char what[1100];
        snprintf(what, sizeof what, "ONNX Runtime cannot load %s model '%s'", ort_role_name(role), path);
        if (ort_check(rt, open_session(m, path, o, ort_level(o->opt_level), o->optimized_path), err, what) != 0) {
            free(m);
            return NULL;
        }
    }
    if (validate(m, err) != 0) {
        ort_model_destroy(m);
        return NULL;
    }
    return m;
}

void ort_model_destroy(ort_model *m) {
    if (!m) return;
    if (m->session) m->api->ReleaseSession(m->session);
    free(m);
}

ort_role ort_model_role(const ort_model *m) { return m->role; }
const char *ort_model_path(const ort_model *m) { return m->path; }
int ort_model_batch(const ort_model *m) { return m->batch; }
size_t ort_model_bytes(const ort_model *m) { return m->file_bytes; }

void ort_model_stats_get(const ort_model *m, ort_model_stats *out) {
    out->runs = atomic_load(&m->runs);
    out->items = atomic_load(&m->items);
    out->run_ns = atomic_load(&m->run_ns);
    out->failures = atomic_load(&m->failures);
}

/* ---- bindings ------------------------------------------------------------------------------ */

struct ort_binding {
    ort_model *m;
    int max_batch, n_in, chunk; /* chunk: items per Run (model's fixed batch), 0 when dynamic */
    OrtMemoryInfo *mem;
    float *in[MAX_INPUTS], *out;
    /* views[k * (n_in + 1) + j]: tensor j (inputs then output). Dynamic: k = batch - 1, a view of
     * the first k + 1 items. Fixed: k = chunk index, a view of items k*chunk .. (k+1)*chunk - 1. */
    OrtValue **views;
    int n_views;
    /* Fixed batch N > 1 only: one N-item copy area for the last, partial chunk. */
    float *stage[MAX_INPUTS + 1];
    OrtValue *stage_views[MAX_INPUTS + 1];
};

static float *tensor_base(const ort_binding *b, int j) { return j < b->n_in ? b->in[j] : b->out; }
static const tensor_spec *tensor_of(const ort_binding *b, int j) {
    const role_spec *s = &ROLE_SPECS[b->m->role];
    return j < b->n_in ? &s->in[j] : &s->out;
}

static int make_view(ort_binding *b, int j, float *data, int items, OrtValue **out, ls_err *err) {
    const tensor_spec *t = tensor_of(b, j);
    int64_t shape[4];
    memcpy(shape, t->dims, sizeof shape);
    shape[0] = items;
    size_t bytes = (size_t)items * spec_elems(t) * sizeof(float);
    return ort_check(b->m->rt,
                     b->m->api->CreateTensorWithDataAsOrtValue(b->mem, data, bytes, shape, (size_t)t->rank,
                                                               ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, out),
                     err, "creating a tensor view");
}

ort_binding *ort_binding_create(ort_model *m, int max_batch, float *const *inputs, float *output, ls_err *err) {
    if (!m || !inputs || !output || max_batch < 1 || max_batch > MAX_BATCH_LIMIT) {
        ls_fail(err, LS_EINVAL, "ort_binding_create: need a model, buffers and 1 <= max_batch <= %d (got %d)",
                MAX_BATCH_LIMIT, max_batch);
        return NULL;
    }
    ort_binding *b = calloc(1, sizeof *b);
    if (!b) {
        ls_fail(err, LS_ENOMEM, "allocating a binding");
        return NULL;
    }
    b->m = m;
    b->max_batch = max_batch;
    b->n_in = ROLE_SPECS[m->role].n_in;
    b->chunk = m->batch;
    b->out = output;
    for (int j = 0; j < b->n_in; j++) {
        if (!inputs[j]) {
            ls_fail(err, LS_EINVAL, "ort_binding_create: input %d is NULL", j);
            goto fail;
        }
        b->in[j] = inputs[j];
    }
    if (ort_check(m->rt, m->api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &b->mem), err,
                  "creating CPU memory info") != 0)
        goto fail;
    int nt = b->n_in + 1;
    b->n_views = b->chunk ? max_batch / b->chunk : max_batch;
    b->views = calloc((size_t)(b->n_views * nt) + 1, sizeof *b->views);
    if (!b->views) {
        ls_fail(err, LS_ENOMEM, "allocating tensor views");
        goto fail;
    }
    for (int k = 0; k < b->n_views; k++)
        for (int j = 0; j < nt; j++) {
            size_t per_item = spec_elems(tensor_of(b, j));
            float *data = tensor_base(b, j) + (b->chunk ? (size_t)k * (size_t)b->chunk * per_item : 0);
            int items = b->chunk ? b->chunk : k + 1;
            if (make_view(b, j, data, items, &b->views[k * nt + j], err) != 0) goto fail;
        }
    if (b->chunk > 1) {
        for (int j = 0; j < nt; j++) {
            b->stage[j] = calloc((size_t)b->chunk * spec_elems(tensor_of(b, j)), sizeof(float));
            if (!b->stage[j]) {
                ls_fail(err, LS_ENOMEM, "allocating the %d-item staging area", b->chunk);
                goto fail;
            }
            if (make_view(b, j, b->stage[j], b->chunk, &b->stage_views[j], err) != 0) goto fail;
        }
    }
    return b;
fail:
    ort_binding_destroy(b);
    return NULL;
}

void ort_binding_destroy(ort_binding *b) {
    if (!b) return;
    const OrtApi *api = b->m->api;
    if (b->views)
        for (int i = 0; i < b->n_views * (b->n_in + 1); i++)
            if (b->views[i]) api->ReleaseValue(b->views[i]);
    free(b->views);
    for (int j = 0; j <= MAX_INPUTS; j++) {
        if (b->stage_views[j]) api->ReleaseValue(b->stage_views[j]);
        free(b->stage[j]);
    }
    if (b->mem) api->ReleaseMemoryInfo(b->mem);
    free(b);
}

int ort_binding_max_batch(const ort_binding *b) { return b->max_batch; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One ORT Run over views[0 .. n_in-1] -> views[n_in]. */
static int run_views(ort_binding *b, OrtValue **views, ls_err *err) {
    const role_spec *s = &ROLE_SPECS[b->m->role];
    const char *in_names[MAX_INPUTS];
    for (int j = 0; j < b->n_in; j++) in_names[j] = s->in[j].name;
    uint64_t t0 = now_ns();
    OrtStatus *st = b->m->api->Run(b->m->session, NULL, in_names, (const OrtValue *const *)views, (size_t)b->n_in,
                                   &s->out.name, 1, &views[b->n_in]);
    atomic_fetch_add(&b->m->run_ns, now_ns() - t0);
    if (!st) return 0;
    char what[1100];
    snprintf(what, sizeof what, "running %s '%s'", ort_role_name(b->m->role), b->m->path);
    return ort_check(b->m->rt, st, err, what);
}

int ort_binding_run(ort_binding *b, int batch, ls_err *err) {
    if (!b || batch < 1 || batch > b->max_batch)
        return ls_fail(err, LS_EINVAL, "ort_binding_run: batch %d outside 1..%d", batch, b ? b->max_batch : 0);
    int nt = b->n_in + 1, rc = 0;
    if (!b->chunk) {
        rc = run_views(b, &b->views[(batch - 1) * nt], err);
    } else {
        int full = batch / b->chunk, rest = batch % b->chunk;
        for (int k = 0; k < full && rc == 0; k++) rc = run_views(b, &b->views[k * nt], err);
        if (rc == 0 && rest) {
            /* The model takes exactly `chunk` items: copy the tail in, pad with zeros, copy back. */
            size_t first = (size_t)full * (size_t)b->chunk;
            for (int j = 0; j < b->n_in; j++) {
                size_t per = spec_elems(tensor_of(b, j));
                memcpy(b->stage[j], b->in[j] + first * per, (size_t)rest * per * sizeof(float));
                memset(b->stage[j] + (size_t)rest * per, 0, (size_t)(b->chunk - rest) * per * sizeof(float));
            }
            rc = run_views(b, b->stage_views, err);
            if (rc == 0) {
                size_t per = spec_elems(tensor_of(b, b->n_in));
                memcpy(b->out + first * per, b->stage[b->n_in], (size_t)rest * per * sizeof(float));
            }
        }
    }
    if (rc != 0) {
        atomic_fetch_add(&b->m->failures, 1);
        return -1;
    }
    atomic_fetch_add(&b->m->runs, 1);
    atomic_fetch_add(&b->m->items, (uint64_t)batch);
    return 0;
}
