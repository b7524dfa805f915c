/* ort_ep.h - which execution provider runs a model: ONNX Runtime's CPU provider or its CUDA one.
 *
 * ort_ep_cfg says what the user asked for (config file or command line). ort_ep_cuda_devices()
 * makes the CUDA provider available in a runtime: it registers ONNX Runtime's CUDA provider library
 * (libonnxruntime_providers_cuda.so, by default beside the ORT library that was opened) with the
 * runtime's OrtEnv, once, and returns how many CUDA devices it offers. ort_ep_append() adds the
 * provider to a session's options. Two ways exist in ORT 1.29 and both are tried:
 *   - the EP-device API (RegisterExecutionProviderLibrary + SessionOptionsAppendExecutionProvider_V2):
 *     every option (CUDA graphs, TF32, cuDNN search, memory limit) and device tensors with
 *     CopyTensors; preferred;
 *   - the classic OrtCUDAProviderOptions struct, for builds where the first fails: no CUDA graphs and
 *     no TF32 switch (asking for either with it is an error, not silently ignored).
 * Before loading the provider library, the ORT library itself must be a CUDA build: a CPU-only build
 * (CreateCUDAProviderOptions answers "not enabled in this build") lacks the CUDA part of the C++
 * interface the provider calls back through, so it is refused, never handed the provider library.
 * Errors: LS_EMODEL when the CUDA provider or the device is missing (the message says what ORT
 * answered and how to fall back), LS_EINVAL for settings this ORT cannot honour. Registration allocates inside
 * ORT; appending allocates nothing of ours. Thread-safe (the runtime's lock guards registration). */
#ifndef LS_ORT_EP_H
#define LS_ORT_EP_H

#include <stddef.h>

#include "common/err.h"
#include "infer/ort_runtime.h"

typedef enum { ORT_EP_CPU = 0, ORT_EP_CUDA } ort_ep_kind;

typedef enum {
    ORT_CUDNN_EXHAUSTIVE = 0, /* benchmark every cuDNN algorithm once per shape (best, slow start) */
    ORT_CUDNN_HEURISTIC,      /* cuDNN's own pick */
    ORT_CUDNN_DEFAULT         /* a fixed default algorithm */
} ort_cudnn_search;

typedef enum {
    ORT_CUDA_API_AUTO = 0,  /* the EP-device API, else the classic options */
    ORT_CUDA_API_EP_DEVICE, /* only the EP-device API */
    ORT_CUDA_API_CLASSIC    /* only the classic options (no CUDA graphs, no device tensors) */
} ort_cuda_api;

typedef struct {
    ort_ep_kind kind;
    int device_id;            /* CUDA ordinal */
    size_t mem_limit;         /* bytes ORT's CUDA arena may hold; 0 = no limit */
    ort_cudnn_search cudnn_search;
    int tf32;                 /* 1: allow TF32 tensor-core math for float32 (faster, ~1e-3 rel.),
                                 0: strict float32, -1: ORT's default */
    int cuda_graph;           /* 1: capture one CUDA graph per batch shape and replay it (an error
                                 where it cannot be done), 0: never, -1: where the EP-device API
                                 and device tensors allow it */
    const char *provider_lib; /* CUDA provider library; NULL/"" = beside the ORT library */
    ort_cuda_api api;         /* how the provider is added (a runtime keeps its first choice) */
    int host_tensors;         /* 1: bindings keep tensors on the host and ORT copies them per run */
} ort_ep_cfg;

const char *ort_ep_kind_name(ort_ep_kind kind); /* "cpu" / "cuda" */
int ort_ep_kind_parse(const char *s, ort_ep_kind *out); /* 0, or -1 for an unknown name */
int ort_cudnn_search_parse(const char *s, ort_cudnn_search *out);
int ort_cuda_api_parse(const char *s, ort_cuda_api *out); /* auto | ep_device | classic */

/* Registers the CUDA provider (first call, the way `api` says) and returns the number of CUDA
 * devices (>= 1), or -1 with LS_EMODEL. lib may be NULL. Safe to call again and from several
 * threads; later calls get the first call's outcome. */
int ort_ep_cuda_devices(ort_runtime *rt, const char *lib, ort_cuda_api api, ls_err *err);

/* The EP device of CUDA ordinal `id` (NULL when the EP-device API is not in use or id is out of
 * range); valid as long as the runtime. */
const OrtEpDevice *ort_ep_cuda_device(ort_runtime *rt, int id);

/* Adds the provider of cfg to so (nothing for ORT_EP_CPU). Writes a short description of what was
 * done into desc (e.g. "cuda:0 (EP-device API, CUDA graphs, TF32 off)"). */
int ort_ep_append(ort_runtime *rt, OrtSessionOptions *so, const ort_ep_cfg *cfg, char *desc, size_t desc_cap,
                  ls_err *err);

#endif
