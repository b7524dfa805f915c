/* ort_binding.c - per-worker tensor views over caller buffers, and running the model on them.
 *
 * CPU: Run() with pre-made OrtValues, not IoBinding. On the CPU provider both let ORT read our
 * inputs and write its output straight into caller memory, and Run() keeps no per-call ORT state,
 * so one set of tensor views per batch size (made once, here) serves every call, and several
 * workers can call Run on the shared session at once.
 *
 * CUDA (EP-device API): the binding also owns one device buffer per tensor, sized for max_batch,
 * from ORT's shared allocator for that GPU, with device views and one IoBinding per batch size
 * bound to them. A run copies the host inputs in (CopyTensors, through the provider's own data
 * transfer), runs with the IoBinding, and copies the output out. The device addresses of a batch
 * size never change, which is what CUDA graph replay requires (graph id = the view index + 1).
 * CUDA through the classic options has no device tensors: Run() on host views, ORT copies.
 *
 * GPU work holds the runtime's GPU lock (ort_runtime.h): shared, except the runs that may capture
 * a CUDA graph, which hold it alone. ORT's CUDA provider keeps captured graphs per thread and
 * captures a graph id on its third run on a thread (two regular runs first), so a view set's first
 * ORT_GRAPH_WARMUP_RUNS successful runs on a thread are the ones that may capture; a binding run by
 * another thread starts that count again (lipsyncd keeps each binding on one thread: its worker's,
 * or the worker's runner, so graphs are captured once). With CUDA graphs a binding must have
 * device tensors (fixed addresses per batch size): without them creating it fails. */
#include "infer/ort_model_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BATCH_LIMIT 4096
#define NT_MAX (MAX_INPUTS + 1)

typedef struct {
    int runs;            /* successful runs on `thread`, counted up to ORT_GRAPH_WARMUP_RUNS */
    pthread_t thread;    /* valid when runs > 0 */
} graph_warmup;

typedef struct {
    OrtAllocator *alloc; /* ORT's shared allocator of the model's GPU (not ours to release) */
    const OrtMemoryInfo *mem;
    void *buf[NT_MAX];   /* device copies of the tensors, max_batch items each */
    size_t bytes;        /* their total, counted in the model's bound_device_bytes */
    OrtValue **views;    /* like ort_binding.views, over buf */
    OrtIoBinding **iob;  /* one per view set */
    OrtRunOptions **ro;  /* one per view set: its CUDA graph id */
    graph_warmup *warm;  /* per view set */
} device_side;

struct ort_binding {
    ort_model *m;
    int max_batch, n_in, chunk; /* chunk: items per Run (model's fixed batch), 0 when dynamic */
    OrtMemoryInfo *mem;
    uint8_t *buf[NT_MAX];       /* caller's buffers: inputs then output */
    /* views[k * nt + j]: tensor j (inputs then output). Dynamic: k = batch - 1, a view of the first
     * k + 1 items. Fixed: k = chunk index, a view of items k*chunk .. (k+1)*chunk - 1. */
    OrtValue **views;
    int n_views;
    /* Fixed batch N > 1 only: one N-item copy area for the last, partial chunk. */
    uint8_t *stage[NT_MAX];
    OrtValue *stage_views[NT_MAX];
    device_side *dev;           /* NULL unless the model has device memory (CUDA, EP-device API) */
    ls_err device_why;          /* why dev is NULL for a model on CUDA (empty otherwise) */
};

static const tensor_spec *tensor_of(const ort_binding *b, int j) {
    const role_spec *s = &ORT_ROLE_SPECS[b->m->role];
    return j < b->n_in ? &s->in[j] : &s->out;
}

static size_t item_bytes(const ort_binding *b, int j) {
    const tensor_spec *t = tensor_of(b, j);
    return ort_spec_elems(t) * ort_spec_elem_size(t);
}

static int make_view(ort_binding *b, const OrtMemoryInfo *mem, int j, void *data, int items, OrtValue **out,
                     ls_err *err) {
    const tensor_spec *t = tensor_of(b, j);
    int64_t shape[4];
    memcpy(shape, t->dims, sizeof shape);
    shape[0] = items;
    return ort_check(b->m->rt,
                     b->m->api->CreateTensorWithDataAsOrtValue(mem, data, (size_t)items * item_bytes(b, j), shape,
                                                               (size_t)t->rank, t->type, out),
                     err, "creating a tensor view");
}

/* Views over `base` buffers for every view set (see ort_binding.views). */
static int make_views(ort_binding *b, const OrtMemoryInfo *mem, uint8_t *const *base, OrtValue **views, ls_err *err) {
    int nt = b->n_in + 1;
    for (int k = 0; k < b->n_views; k++)
        for (int j = 0; j < nt; j++) {
            size_t off = b->chunk ? (size_t)k * (size_t)b->chunk * item_bytes(b, j) : 0;
            int items = b->chunk ? b->chunk : k + 1;
            if (make_view(b, mem, j, base[j] + off, items, &views[k * nt + j], err) != 0) return -1;
        }
    return 0;
}

/* Host <-> device copies of n tensors (all sources on one device, all destinations on another). */
static OrtStatus *copy_tensors(const ort_model *m, const OrtValue *const *src, OrtValue *const *dst, size_t n) {
    if (m->copy_tensors) return m->copy_tensors(m->api, src, dst, n);
    return m->api->CopyTensors(ort_runtime_env(m->rt), src, dst, NULL, n);
}

static int device_create(ort_binding *b, ls_err *err) {
    const OrtApi *api = b->m->api;
    ort_runtime *rt = b->m->rt;
    device_side *d = calloc(1, sizeof *d);
    int nt = b->n_in + 1;
    if (!d) return ls_fail(err, LS_ENOMEM, "allocating a device binding");
    b->dev = d;
    d->mem = b->m->device_mem;
    if (ort_check(rt, api->GetSharedAllocator(ort_runtime_env(rt), d->mem, &d->alloc), err,
                  "getting the GPU allocator") != 0)
        return -1;
    if (!d->alloc) return ls_fail(err, LS_EMODEL, "no shared allocator for the GPU");
    for (int j = 0; j < nt; j++) {
        size_t bytes = (size_t)b->max_batch * item_bytes(b, j);
        if (!(d->buf[j] = d->alloc->Alloc(d->alloc, bytes)))
            return ls_fail(err, LS_ENOMEM, "allocating %zu bytes on GPU %d", bytes, b->m->ep.device_id);
        d->bytes += bytes;
        atomic_fetch_add(&b->m->bound_device_bytes, bytes);
    }
    d->views = calloc((size_t)(b->n_views * nt), sizeof *d->views);
    d->iob = calloc((size_t)b->n_views, sizeof *d->iob);
    d->ro = calloc((size_t)b->n_views, sizeof *d->ro);
    d->warm = calloc((size_t)b->n_views, sizeof *d->warm);
    if (!d->views || !d->iob || !d->ro || !d->warm) return ls_fail(err, LS_ENOMEM, "allocating device views");
    if (make_views(b, d->mem, (uint8_t *const *)d->buf, d->views, err) != 0) return -1;
    const role_spec *s = &ORT_ROLE_SPECS[b->m->role];
    int first_id = atomic_fetch_add(&b->m->bindings_made, 1) * MAX_BATCH_LIMIT + 1;
    for (int k = 0; k < b->n_views; k++) {
        OrtStatus *st = api->CreateIoBinding(b->m->session, &d->iob[k]);
        for (int j = 0; j < b->n_in && !st; j++) st = api->BindInput(d->iob[k], s->in[j].name, d->views[k * nt + j]);
        if (!st) st = api->BindOutput(d->iob[k], s->out.name, d->views[k * nt + b->n_in]);
        if (!st) st = api->CreateRunOptions(&d->ro[k]);
        char id[16];
        snprintf(id, sizeof id, "%d", b->m->ep.cuda_graph > 0 ? first_id + k : -1);
        if (!st) st = api->AddRunConfigEntry(d->ro[k], "gpu_graph_id", id);
        if (ort_check(rt, st, err, "binding device tensors") != 0) return -1;
    }
    /* One copy now, so that a provider without a data transfer shows here, not in every run. */
    return ort_check(rt, copy_tensors(b->m, (const OrtValue *const *)b->views, d->views, 1), err, "copying to the GPU");
}

static void device_destroy(ort_binding *b) {
    device_side *d = b->dev;
    if (!d) return;
    b->dev = NULL;
    const OrtApi *api = b->m->api;
    int nt = b->n_in + 1;
    ort_runtime_gpu_lock(b->m->rt, 0);
    for (int k = 0; k < b->n_views; k++) {
        if (d->iob && d->iob[k]) api->ReleaseIoBinding(d->iob[k]);
        if (d->ro && d->ro[k]) api->ReleaseRunOptions(d->ro[k]);
    }
    if (d->views)
        for (int i = 0; i < b->n_views * nt; i++)
            if (d->views[i]) api->ReleaseValue(d->views[i]);
    for (int j = 0; j < nt; j++)
        if (d->buf[j]) d->alloc->Free(d->alloc, d->buf[j]);
    atomic_fetch_sub(&b->m->bound_device_bytes, d->bytes);
    ort_runtime_gpu_unlock(b->m->rt);
    free(d->views);
    free(d->iob);
    free(d->ro);
    free(d->warm);
    free(d);
}

ort_binding *ort_binding_create(ort_model *m, int max_batch, void *const *inputs, void *output, ls_err *err) {
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
    b->n_in = ORT_ROLE_SPECS[m->role].n_in;
    b->chunk = m->batch;
    b->buf[b->n_in] = output;
    for (int j = 0; j < b->n_in; j++) {
        if (!inputs[j]) {
            ls_fail(err, LS_EINVAL, "ort_binding_create: input %d is NULL", j);
            goto fail;
        }
        b->buf[j] = inputs[j];
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
    if (make_views(b, b->mem, b->buf, b->views, err) != 0) goto fail;
    if (b->chunk > 1) {
        for (int j = 0; j < nt; j++) {
            b->stage[j] = calloc((size_t)b->chunk, item_bytes(b, j));
            if (!b->stage[j]) {
                ls_fail(err, LS_ENOMEM, "allocating the %d-item staging area", b->chunk);
                goto fail;
            }
            if (make_view(b, b->mem, j, b->stage[j], b->chunk, &b->stage_views[j], err) != 0) goto fail;
        }
    }
    if (!m->device_mem && m->device_note[0]) ls_fail(&b->device_why, LS_EMODEL, "%s", m->device_note);
    if (m->device_mem) {
        ort_runtime_gpu_lock(m->rt, 0);
        int rc = device_create(b, &b->device_why);
        ort_runtime_gpu_unlock(m->rt);
        if (rc != 0) device_destroy(b); /* an optimisation: without it ORT copies host tensors itself */
    }
    if (m->ep.cuda_graph > 0 && !b->dev) {
        /* Run() on host tensors would replay one graph (id 0) for every batch size. */
        ls_fail(err, LS_EMODEL, "CUDA graphs need device tensors, and none could be made (%s); "
                "set onnx.cuda.cuda_graph: false", b->device_why.msg);
        goto fail;
    }
    return b;
fail:
    ort_binding_destroy(b);
    return NULL;
}

void ort_binding_destroy(ort_binding *b) {
    if (!b) return;
    const OrtApi *api = b->m->api;
    device_destroy(b);
    if (b->views)
        for (int i = 0; i < b->n_views * (b->n_in + 1); i++)
            if (b->views[i]) api->ReleaseValue(b->views[i]);
    free(b->views);
    for (int j = 0; j < NT_MAX; j++) {
        if (b->stage_views[j]) api->ReleaseValue(b->stage_views[j]);
        free(b->stage[j]);
    }
    if (b->mem) api->ReleaseMemoryInfo(b->mem);
    free(b);
}

int ort_binding_max_batch(const ort_binding *b) { return b->max_batch; }
int ort_binding_on_device(const ort_binding *b) { return b->dev != NULL; }
const char *ort_binding_device_note(const ort_binding *b) { return b->device_why.msg; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* RunWithBinding on view set k; serialised when the model replays CUDA graphs. */
static OrtStatus *run_bound(ort_binding *b, int k) {
    int graphs = b->m->ep.cuda_graph > 0;
    if (graphs) pthread_mutex_lock(&b->m->graph_mu);
    OrtStatus *st = b->m->api->RunWithBinding(b->m->session, b->dev->ro[k], b->dev->iob[k]);
    if (graphs) pthread_mutex_unlock(&b->m->graph_mu);
    return st;
}

/* On the GPU: host inputs -> device view set k, run, device output -> host. */
static OrtStatus *run_device(ort_binding *b, OrtValue **host, int k) {
    OrtValue **dv = &b->dev->views[k * (b->n_in + 1)];
    OrtStatus *st = copy_tensors(b->m, (const OrtValue *const *)host, dv, (size_t)b->n_in);
    if (!st) st = run_bound(b, k);
    if (!st) st = copy_tensors(b->m, (const OrtValue *const *)&dv[b->n_in], &host[b->n_in], 1);
    return st;
}

/* Takes the GPU lock for a run on view set k, if the model is on a GPU: alone while the set may
 * still capture a CUDA graph (its first successful runs). Returns what gpu_leave needs: -1 (no
 * lock), 0 (shared), 1 (alone). */
static int gpu_enter(ort_binding *b, int k) {
    if (!b->dev && b->m->ep.kind != ORT_EP_CUDA) return -1;
    int alone = 0;
    if (b->dev && b->m->ep.cuda_graph > 0) {
        graph_warmup *w = &b->dev->warm[k];
        if (w->runs > 0 && !pthread_equal(w->thread, pthread_self())) w->runs = 0; /* new thread: cold */
        if (w->runs == 0) w->thread = pthread_self();
        alone = w->runs < ORT_GRAPH_WARMUP_RUNS;
    }
    ort_runtime_gpu_lock(b->m->rt, alone);
    return alone;
}

static void gpu_leave(ort_binding *b, int k, int held, const OrtStatus *st) {
    if (held < 0) return;
    if (held && !st) b->dev->warm[k].runs++;
    ort_runtime_gpu_unlock(b->m->rt);
}

/* One run over host views[0 .. n_in-1] -> views[n_in]; k is the view set (device side). */
static int run_views(ort_binding *b, OrtValue **views, int k, ls_err *err) {
    const role_spec *s = &ORT_ROLE_SPECS[b->m->role];
    const char *in_names[MAX_INPUTS];
    for (int j = 0; j < b->n_in; j++) in_names[j] = s->in[j].name;
    uint64_t t0 = now_ns();
    int held = gpu_enter(b, k);
    OrtStatus *st = b->dev ? run_device(b, views, k)
                           : b->m->api->Run(b->m->session, NULL, in_names, (const OrtValue *const *)views,
                                            (size_t)b->n_in, &s->out.name, 1, &views[b->n_in]);
    gpu_leave(b, k, held, st);
    atomic_fetch_add(&b->m->run_ns, now_ns() - t0);
    if (!st) return 0;
    char what[1300];
    snprintf(what, sizeof what, "running %s '%s' on %s", ort_role_name(b->m->role), b->m->path, b->m->ep_desc);
    return ort_check(b->m->rt, st, err, what);
}

int ort_binding_run_resident(ort_binding *b, int batch, ls_err *err) {
    if (!b || !b->dev || b->chunk || batch < 1 || batch > b->max_batch) return ort_binding_run(b, batch, err);
    uint64_t t0 = now_ns();
    int held = gpu_enter(b, batch - 1);
    OrtStatus *st = run_bound(b, batch - 1);
    gpu_leave(b, batch - 1, held, st);
    atomic_fetch_add(&b->m->run_ns, now_ns() - t0);
    return ort_check(b->m->rt, st, err, "running on device-resident tensors");
}

int ort_binding_run(ort_binding *b, int batch, ls_err *err) {
    if (!b || batch < 1 || batch > b->max_batch)
        return ls_fail(err, LS_EINVAL, "ort_binding_run: batch %d outside 1..%d", batch, b ? b->max_batch : 0);
    int nt = b->n_in + 1, rc = 0;
    if (!b->chunk) {
        rc = run_views(b, &b->views[(batch - 1) * nt], batch - 1, err);
    } else {
        int full = batch / b->chunk, rest = batch % b->chunk;
        for (int k = 0; k < full && rc == 0; k++) rc = run_views(b, &b->views[k * nt], k, err);
        if (rc == 0 && rest) {
            /* The model takes exactly `chunk` items: copy the tail in, pad with zeros, copy back.
             * On the GPU the stage goes through view set 0 (same shape and addresses). */
            size_t first = (size_t)full * (size_t)b->chunk;
            for (int j = 0; j < b->n_in; j++) {
                size_t per = item_bytes(b, j);
                memcpy(b->stage[j], b->buf[j] + first * per, (size_t)rest * per);
                memset(b->stage[j] + (size_t)rest * per, 0, (size_t)(b->chunk - rest) * per);
            }
            rc = run_views(b, b->stage_views, 0, err);
            if (rc == 0) {
                size_t per = item_bytes(b, b->n_in);
                memcpy(b->buf[b->n_in] + first * per, b->stage[b->n_in], (size_t)rest * per);
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
