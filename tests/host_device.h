/* host_device.h - runs a model's device-tensor path (src/infer/ort_binding.c) on host memory.
 *
 * On CUDA through the EP-device API a binding keeps device copies of its tensors in the model's
 * device memory and copies inputs in and the output out around each run. CI has no GPU; this puts
 * a model on that path with the CPU's memory as its "device" memory and memcpy for the copies
 * (ORT registers no transfer between host tensors), counting the bytes copied. The rest (views,
 * IoBindings, view sets per batch size, staging, pipelined bindings) is the code a GPU runs. */
#ifndef LS_TEST_HOST_DEVICE_H
#define LS_TEST_HOST_DEVICE_H

#include <stdatomic.h>
#include <string.h>

#include "infer/ort_model_priv.h"
#include "infer/ort_runtime.h"

static atomic_size_t host_device_bytes; /* copied by host_device_copy, in and out (any thread) */

static inline OrtStatus *host_device_copy(const OrtApi *api, const OrtValue *const *src, OrtValue *const *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t a = 0, b = 0;
        void *from = NULL, *to = NULL;
        OrtStatus *st = api->GetTensorSizeInBytes(src[i], &a);
        if (!st) st = api->GetTensorSizeInBytes(dst[i], &b);
        if (!st) st = api->GetTensorMutableData((OrtValue *)src[i], &from);
        if (!st) st = api->GetTensorMutableData(dst[i], &to);
        if (st) return st;
        if (a != b) return api->CreateStatus(ORT_INVALID_ARGUMENT, "copy between tensors of different sizes");
        if (from == to) return api->CreateStatus(ORT_INVALID_ARGUMENT, "copy of a tensor onto itself");
        memcpy(to, from, a);
        host_device_bytes += a;
    }
    return NULL;
}

/* CPU memory info to stand in for a GPU's (the caller releases it with ReleaseMemoryInfo). */
static inline OrtMemoryInfo *host_device_memory(ort_runtime *rt) {
    const OrtApi *api = ort_runtime_api(rt);
    OrtMemoryInfo *mem = NULL;
    OrtStatus *st = api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem);
    if (st) api->ReleaseStatus(st);
    return mem;
}

/* Puts model m on the device path with `mem` (host_device_memory) as its device memory, as
 * ort_model_load does for a GPU. Bindings created afterwards take the path. */
static inline void host_device_use(ort_model *m, const OrtMemoryInfo *mem) {
    m->device_mem = mem;
    m->copy_tensors = host_device_copy;
}

#endif
