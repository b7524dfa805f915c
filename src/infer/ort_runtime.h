/* ort_runtime.h - the ONNX Runtime library, opened with dlopen, and its one OrtEnv.
 *
 * ort_runtime_create() loads the library from `lib_path`, else $LIPSYNC_ORT_LIBRARY, else
 * LS_ORT_DEFAULT_LIBRARY (set by CMake), and asks it for the C API this code was compiled against
 * (ORT_API_VERSION); an older library is refused with a message naming both versions. The runtime
 * owns the library handle and the OrtEnv; everything else (models, bindings) hangs off it and must
 * be destroyed before it. Nothing here is global, so two runtimes (e.g. two ORT builds) can coexist
 * as far as ONNX Runtime itself allows. Creation allocates; the other functions do not.
 * The env holds one CPU memory arena that every CPU session of the runtime uses
 * (ort_runtime_shared_cpu_arena; ort_model.c asks for it per session): an arena keeps the peak
 * of the runs it served, so one per session would hold that peak once per loaded model. A second
 * runtime in the process shares the first's env (ORT has one per process), arena included. If ORT
 * cannot register it (out of memory), sessions keep arenas of their own.
 * Errors: LS_EIO (library missing or not ONNX Runtime), LS_EMODEL (too old, or ORT failed). */
#ifndef LS_ORT_RUNTIME_H
#define LS_ORT_RUNTIME_H

#include "common/err.h"

#include <onnxruntime_c_api.h>

typedef struct ort_runtime ort_runtime;

/* lib_path may be NULL (then the environment variable / compiled default is used). */
ort_runtime *ort_runtime_create(const char *lib_path, ls_err *err);
void ort_runtime_destroy(ort_runtime *rt); /* NULL is fine */

const OrtApi *ort_runtime_api(const ort_runtime *rt);
OrtEnv *ort_runtime_env(const ort_runtime *rt);
const char *ort_runtime_version(const ort_runtime *rt);   /* e.g. "1.29.0" */
const char *ort_runtime_library(const ort_runtime *rt);   /* the path that was opened */
int ort_runtime_shared_cpu_arena(const ort_runtime *rt);  /* 1 when the env's CPU arena exists */

/* Work on a GPU, around CUDA graph captures (ort_model.c, ort_binding.c). ORT's CUDA provider
 * captures a graph with cudaStreamCaptureModeGlobal: while one thread captures, a CUDA call such as
 * cudaMalloc or a synchronous copy from any other thread of the process fails (error 900) and
 * spoils the capture. So every ORT call that may touch a GPU (creating or releasing a CUDA session,
 * device tensors, copies, runs) holds this lock shared, and a run that may capture holds it alone.
 * Writers go first, so a capture is not starved by steady traffic. Not recursive: hold it around
 * one ORT call at a time. */
void ort_runtime_gpu_lock(ort_runtime *rt, int exclusive);
void ort_runtime_gpu_unlock(ort_runtime *rt);

/* Turns an ORT status into an ls_err: NULL status -> returns 0. Otherwise fills err with
 * "<what>: <ORT message>" and a code from ORT's (ORT_NO_SUCHFILE -> LS_ENOTFOUND,
 * ORT_INVALID_PROTOBUF -> LS_EFORMAT, anything else -> LS_EMODEL), releases the status, returns -1. */
int ort_check(const ort_runtime *rt, OrtStatus *status, ls_err *err, const char *what);

#endif
