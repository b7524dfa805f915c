/* ort_runtime.c - dlopen of ONNX Runtime, API version check, the OrtEnv, status -> ls_err.
 *
 * The library is opened at run time rather than linked so that another ORT build (e.g. with CUDA)
 * can be dropped in without rebuilding lipsyncd. */
#include "infer/ort_runtime_priv.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LS_ORT_DEFAULT_LIBRARY
#define LS_ORT_DEFAULT_LIBRARY "libonnxruntime.so.1"
#endif

typedef const OrtApiBase *(*get_api_base_fn)(void);

static OrtLoggingLevel log_level(const char *name) {
    static const char *const names[] = {"verbose", "info", "warning", "error", "fatal"};
    for (int i = 0; name && i < 5; i++)
        if (!strcmp(name, names[i])) return (OrtLoggingLevel)i;
    return ORT_LOGGING_LEVEL_FATAL;
}

/* One CPU arena in the env, shared by the CPU sessions that ask for it (session.use_env_allocators).
 * With an arena per session, each loaded UNet kept the peak of its own largest runs: two full-size
 * UNets used at batch 8 by two workers held 6.7 GB against 3.6 GB for one, and at batch 25 a
 * 24 GB machine ran out of memory. Shared, the peak is that of the runs in progress at once,
 * whatever the number of models. Default arena settings (as a session's own arena). */
static void register_cpu_arena(ort_runtime *rt) {
    OrtMemoryInfo *mi = NULL;
    OrtStatus *st = rt->api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mi);
    if (!st) st = rt->api->CreateAndRegisterAllocator(rt->env, mi, NULL);
    /* ORT keeps one env per process: a second runtime gets the first's, whose arena is registered
     * already (ORT answers INVALID_ARGUMENT; its other causes, a non-CPU device or a bad arena
     * setting, cannot occur with these arguments). Any other failure (out of memory) leaves each
     * session its own arena, as ORT does by default. */
    rt->shared_cpu_arena = !st || rt->api->GetErrorCode(st) == ORT_INVALID_ARGUMENT;
    if (st) rt->api->ReleaseStatus(st);
    if (mi) rt->api->ReleaseMemoryInfo(mi);
}

ort_runtime *ort_runtime_create(const char *lib_path, ls_err *err) {
    const char *path = lib_path;
    if (!path || !*path) path = getenv("LIPSYNC_ORT_LIBRARY");
    if (!path || !*path) path = LS_ORT_DEFAULT_LIBRARY;

    ort_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        ls_fail(err, LS_ENOMEM, "allocating the ONNX Runtime handle");
        return NULL;
    }
    snprintf(rt->path, sizeof rt->path, "%s", path);
    pthread_mutex_init(&rt->ep_mu, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&rt->gpu_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    /* RTLD_LOCAL: ORT's symbols stay out of the global namespace (it bundles protobuf etc.). */
    rt->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!rt->lib) {
        const char *why = dlerror();
        ls_fail(err, LS_EIO, "cannot open ONNX Runtime library '%s' (set LIPSYNC_ORT_LIBRARY): %s", path,
                why ? why : "unknown reason");
        pthread_mutex_destroy(&rt->ep_mu);
        pthread_rwlock_destroy(&rt->gpu_lock);
        free(rt);
        return NULL;
    }
    get_api_base_fn get_base;
    /* POSIX sanctions converting dlsym's void * to a function pointer this way. */
    *(void **)&get_base = dlsym(rt->lib, "OrtGetApiBase");
    const OrtApiBase *base = get_base ? get_base() : NULL;
    if (!base) {
        ls_fail(err, LS_EIO, "'%s' is not ONNX Runtime (no OrtGetApiBase)", path);
        goto fail;
    }
    rt->version = base->GetVersionString();
    rt->api = base->GetApi(ORT_API_VERSION);
    if (!rt->api) {
        ls_fail(err, LS_EMODEL,
                "ONNX Runtime at '%s' is version %s, too old: lipsyncd needs C API version %d "
                "(ONNX Runtime 1.%d or newer)",
                path, rt->version ? rt->version : "?", ORT_API_VERSION, ORT_API_VERSION);
        goto fail;
    }
    /* ORT's own log goes to stderr; only fatal messages, since every error also comes back to us
     * as an OrtStatus and is reported through ls_err. LIPSYNC_ORT_LOG=verbose|info|warning|error
     * asks for more (node placement, kernel choices: for diagnosing a provider). */
    if (ort_check(rt, rt->api->CreateEnv(log_level(getenv("LIPSYNC_ORT_LOG")), "lipsyncd", &rt->env), err,
                  "creating the ONNX Runtime environment") != 0)
        goto fail;
    register_cpu_arena(rt);
    return rt;
fail:
    dlclose(rt->lib);
    pthread_mutex_destroy(&rt->ep_mu);
    pthread_rwlock_destroy(&rt->gpu_lock);
    free(rt);
    return NULL;
}

/* A failure here is a bug (a thread taking the lock it holds): going on would unlock a lock it does
 * not hold and let a capture run beside other GPU work, so it stops the process. */
void ort_runtime_gpu_lock(ort_runtime *rt, int exclusive) {
    if ((exclusive ? pthread_rwlock_wrlock(&rt->gpu_lock) : pthread_rwlock_rdlock(&rt->gpu_lock)) != 0) abort();
}

void ort_runtime_gpu_unlock(ort_runtime *rt) {
    if (pthread_rwlock_unlock(&rt->gpu_lock) != 0) abort();
}

void ort_runtime_destroy(ort_runtime *rt) {
    if (!rt) return;
    if (rt->env) rt->api->ReleaseEnv(rt->env);
    pthread_mutex_destroy(&rt->ep_mu);
    pthread_rwlock_destroy(&rt->gpu_lock);
    /* No dlclose: ONNX Runtime keeps process-wide singletons (allocators, logging) that it frees
     * only at exit; unmapping the library orphans them (LeakSanitizer reports them) and a later
     * dlopen would re-run its static initialisers. The handle's reference just stays counted. */
    free(rt);
}

const OrtApi *ort_runtime_api(const ort_runtime *rt) { return rt->api; }
OrtEnv *ort_runtime_env(const ort_runtime *rt) { return rt->env; }
const char *ort_runtime_version(const ort_runtime *rt) { return rt->version ? rt->version : "?"; }
const char *ort_runtime_library(const ort_runtime *rt) { return rt->path; }
int ort_runtime_shared_cpu_arena(const ort_runtime *rt) { return rt->shared_cpu_arena; }

int ort_check(const ort_runtime *rt, OrtStatus *status, ls_err *err, const char *what) {
    if (!status) return 0;
    ls_code code = LS_EMODEL;
    switch (rt->api->GetErrorCode(status)) {
    case ORT_NO_SUCHFILE: code = LS_ENOTFOUND; break;
    case ORT_INVALID_PROTOBUF: code = LS_EFORMAT; break;
    default: break;
    }
    ls_fail(err, code, "%s: %s", what, rt->api->GetErrorMessage(status));
    rt->api->ReleaseStatus(status);
    return -1;
}
