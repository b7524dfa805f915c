/* ort_model_priv.h - what ort_model.c and ort_binding.c share; not part of the public API. */
#ifndef LS_ORT_MODEL_PRIV_H
#define LS_ORT_MODEL_PRIV_H

#include "infer/ort_model.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_INPUTS 2
/* Runs of a binding's view set on a thread that may capture a CUDA graph (ort_binding.c): ORT
 * 1.29's CUDA provider captures on a graph id's third run on a thread (two regular runs first:
 * min_num_runs_before_cuda_graph_capture_; 1 in some versions), plus one run of margin. */
#define ORT_GRAPH_WARMUP_RUNS 4

typedef struct {
    const char *name;
    ONNXTensorElementDataType type;
    int rank;
    int64_t dims[4]; /* dims[0] is the batch and not checked */
} tensor_spec;

typedef struct {
    int n_in;
    tensor_spec in[MAX_INPUTS];
    tensor_spec out;
} role_spec;

extern const role_spec ORT_ROLE_SPECS[ORT_ROLE_COUNT]; /* indexed by ort_role; constant */

size_t ort_spec_elems(const tensor_spec *t);      /* elements per batch item */
size_t ort_spec_elem_size(const tensor_spec *t);  /* bytes per element */

struct ort_model {
    ort_runtime *rt;
    const OrtApi *api;
    OrtSession *session;
    ort_role role;
    int batch; /* fixed batch, or 0 for dynamic */
    size_t file_bytes;
    char path[1024];
    ort_ep_cfg ep;                  /* the provider it runs on (provider_lib not kept) */
    /* CUDA through the EP-device API: the GPU's memory, where bindings keep device copies of their
     * tensors (ort_binding.c); else NULL, with device_note saying why when the model is on CUDA. */
    const OrtMemoryInfo *device_mem;
    char device_note[96];
    /* How bindings copy between host and device tensors: NULL = ORT's CopyTensors through the env
     * (the provider's data transfer). Set by tests that run the device path on host memory, for
     * which ORT registers no transfer. */
    OrtStatus *(*copy_tensors)(const OrtApi *api, const OrtValue *const *src, OrtValue *const *dst, size_t n);
    atomic_size_t bound_device_bytes; /* device copies held by this model's bindings */
    char ep_desc[128];
    _Atomic uint64_t runs, items, run_ns, failures;
    /* CUDA graphs: ORT replays a captured graph per graph id into the addresses it was captured
     * with, and a session with graphs must not run from two threads at once. So every binding
     * gets its own ids (bindings_made) and replays are serialised (graph_mu). */
    atomic_int bindings_made;
    pthread_mutex_t graph_mu;
};

#endif
