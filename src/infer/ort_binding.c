/* ort_binding.c - per-worker tensor views over caller buffers, and running the model on them.
 *
 * Why Run() with pre-made OrtValues and not IoBinding: on the CPU execution provider both let ORT
 * read our inputs and write its output straight into caller memory (an OrtValue passed in
 * `outputs` is used as is). Run() keeps no per-call ORT state, so one set of tensor views per batch
 * size (made once, at binding creation) serves every call, and several workers can call Run on the
 * shared session at once. IoBinding would have to be re-bound whenever the batch size changes and
 * only pays off for device memory (a CUDA EP keeping outputs on the GPU); switching to it later is
 * local to this file. */
#include "infer/ort_model_priv.h"

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#define MAX_BATCH_LIMIT 4096

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
    const role_spec *s = &ORT_ROLE_SPECS[b->m->role];
    return j < b->n_in ? &s->in[j] : &s->out;
}

static int make_view(ort_binding *b, int j, float *data, int items, OrtValue **out, ls_err *err) {
    const tensor_spec *t = tensor_of(b, j);
    int64_t shape[4];
    memcpy(shape, t->dims, sizeof shape);
    shape[0] = items;
    size_t bytes = (size_t)items * ort_spec_elems(t) * sizeof(float);
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
    b->n_in = ORT_ROLE_SPECS[m->role].n_in;
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
            size_t per_item = ort_spec_elems(tensor_of(b, j));
            float *data = tensor_base(b, j) + (b->chunk ? (size_t)k * (size_t)b->chunk * per_item : 0);
            int items = b->chunk ? b->chunk : k + 1;
            if (make_view(b, j, data, items, &b->views[k * nt + j], err) != 0) goto fail;
        }
    if (b->chunk > 1) {
        for (int j = 0; j < nt; j++) {
            b->stage[j] = calloc((size_t)b->chunk * ort_spec_elems(tensor_of(b, j)), sizeof(float));
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
    const role_spec *s = &ORT_ROLE_SPECS[b->m->role];
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
                size_t per = ort_spec_elems(tensor_of(b, j));
                memcpy(b->stage[j], b->in[j] + first * per, (size_t)rest * per * sizeof(float));
                memset(b->stage[j] + (size_t)rest * per, 0, (size_t)(b->chunk - rest) * per * sizeof(float));
            }
            rc = run_views(b, b->stage_views, err);
            if (rc == 0) {
                size_t per = ort_spec_elems(tensor_of(b, b->n_in));
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
