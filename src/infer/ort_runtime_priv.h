/* ort_runtime_priv.h - the runtime's fields, shared by ort_runtime.c and ort_ep.c only. */
#ifndef LS_ORT_RUNTIME_PRIV_H
#define LS_ORT_RUNTIME_PRIV_H

#include <pthread.h>

#include "infer/ort_runtime.h"

#define ORT_MAX_CUDA_DEVICES 16

typedef enum {
    ORT_CUDA_UNTRIED = 0, /* nobody asked for CUDA yet */
    ORT_CUDA_EP_API,      /* registered through RegisterExecutionProviderLibrary */
    ORT_CUDA_LEGACY,      /* the classic OrtCUDAProviderOptions path works */
    ORT_CUDA_MISSING      /* neither: cuda_error says why */
} ort_cuda_state;

struct ort_runtime {
    void *lib;
    const OrtApi *api;
    OrtEnv *env;
    int shared_cpu_arena; /* the env holds one CPU arena for all CPU sessions (ort_runtime.h) */
    const char *version;
    char path[1024];
    /* The CUDA provider, set up on first use (ort_ep.c), under ep_mu. */
    pthread_mutex_t ep_mu;
    ort_cuda_state cuda;
    const OrtEpDevice *cuda_devices[ORT_MAX_CUDA_DEVICES]; /* by CUDA ordinal (EP-device API) */
    int n_cuda_devices;
    char cuda_error[768];
    pthread_rwlock_t gpu_lock; /* ort_runtime_gpu_lock (ort_runtime.h) */
};

#endif
