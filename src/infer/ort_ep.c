/* ort_ep.c - the CPU or CUDA execution provider for a session (see ort_ep.h). */
#include "infer/ort_ep.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/ort_runtime_priv.h"

#define CUDA_EP_NAME "CUDAExecutionProvider"

const char *ort_ep_kind_name(ort_ep_kind kind) { return kind == ORT_EP_CUDA ? "cuda" : "cpu"; }

/* Index of s in names[0..n), or -1. */
static int name_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

int ort_ep_kind_parse(const char *s, ort_ep_kind *out) {
    static const char *const names[] = {"cpu", "cuda"};
    int i = name_index(s, names, 2);
    if (i >= 0) *out = (ort_ep_kind)i;
    return i >= 0 ? 0 : -1;
}

static const char *const CUDNN_NAMES[] = {"EXHAUSTIVE", "HEURISTIC", "DEFAULT"};

int ort_cudnn_search_parse(const char *s, ort_cudnn_search *out) {
    static const char *const names[] = {"exhaustive", "heuristic", "default"};
    int i = name_index(s, names, 3);
    if (i >= 0) *out = (ort_cudnn_search)i;
    return i >= 0 ? 0 : -1;
}

int ort_cuda_api_parse(const char *s, ort_cuda_api *out) {
    static const char *const names[] = {"auto", "ep_device", "classic"};
    int i = name_index(s, names, 3);
    if (i >= 0) *out = (ort_cuda_api)i;
    return i >= 0 ? 0 : -1;
}

/* The provider library beside the ORT library that was opened (a bare name if that had no folder,
 * so the loader's search path applies as it did for ORT itself). */
static void default_lib(const ort_runtime *rt, char *out, size_t cap) {
    const char *slash = strrchr(rt->path, '/');
    int dir = slash ? (int)(slash - rt->path + 1) : 0;
    snprintf(out, cap, "%.*slibonnxruntime_providers_cuda.so", dir, rt->path);
}

/* The CUDA ordinal of an EP device, when ORT's metadata states one; -1 otherwise. */
static int device_ordinal(const OrtApi *api, const OrtEpDevice *d) {
    const OrtKeyValuePairs *sets[] = {api->EpDevice_EpMetadata(d), api->EpDevice_EpOptions(d),
                                      api->HardwareDevice_Metadata(api->EpDevice_Device(d))};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        if (!sets[i]) continue;
        const char *v = api->GetKeyValue(sets[i], "cuda_device_id");
        if (!v) v = api->GetKeyValue(sets[i], "device_id");
        if (v && *v) return atoi(v);
    }
    return -1;
}

/* Whether this ONNX Runtime library can host libonnxruntime_providers_cuda.so: 0 when it can, else -1
 * with the reason in rt. The CUDA provider calls back into the library through ProviderHostCPU, a
 * C++ interface whose CUDA part exists only in builds made with USE_CUDA (or the CUDA provider
 * interface); a CPU-only build lacks it (ORT 1.29's CPU library has 4 entries, the CUDA provider
 * calls up to 56), and the provider then jumps into unrelated functions: the Slice kernel of the
 * uint8 wrapper crashed that way on an H200. Nothing in the C API names the build, but the same
 * condition decides whether CreateCUDAProviderOptions is implemented, so it is the test. */
static int check_cuda_build(ort_runtime *rt) {
    const OrtApi *api = rt->api;
    OrtCUDAProviderOptionsV2 *o = NULL;
    OrtStatus *st = api->CreateCUDAProviderOptions(&o);
    if (!st) {
        api->ReleaseCUDAProviderOptions(o);
        return 0;
    }
    snprintf(rt->cuda_error, sizeof rt->cuda_error,
             "'%.200s' is a CPU-only build (CreateCUDAProviderOptions: %.80s): libonnxruntime_providers_cuda.so "
             "would call wrong functions in it; use libonnxruntime.so of a CUDA build",
             rt->path, api->GetErrorMessage(st));
    api->ReleaseStatus(st);
    return -1;
}

/* Tries the EP-device API: 0 on success (devices recorded), else -1 with the reason in rt. */
static int setup_ep_api(ort_runtime *rt, const char *lib) {
    const OrtApi *api = rt->api;
    OrtStatus *st = api->RegisterExecutionProviderLibrary(rt->env, "CUDA", lib);
    if (st) {
        snprintf(rt->cuda_error, sizeof rt->cuda_error, "registering '%.300s': %.400s", lib, api->GetErrorMessage(st));
        api->ReleaseStatus(st);
        return -1;
    }
    const OrtEpDevice *const *devs = NULL;
    size_t n = 0;
    if ((st = api->GetEpDevices(rt->env, &devs, &n)) != NULL) {
        snprintf(rt->cuda_error, sizeof rt->cuda_error, "listing devices: %s", api->GetErrorMessage(st));
        api->ReleaseStatus(st);
        return -1;
    }
    for (size_t i = 0; i < n && rt->n_cuda_devices < ORT_MAX_CUDA_DEVICES; i++) {
        if (strcmp(api->EpDevice_EpName(devs[i]), CUDA_EP_NAME) != 0) continue;
        int ord = device_ordinal(api, devs[i]);
        int slot = ord >= 0 && ord < ORT_MAX_CUDA_DEVICES && !rt->cuda_devices[ord] ? ord : rt->n_cuda_devices;
        while (slot < ORT_MAX_CUDA_DEVICES && rt->cuda_devices[slot]) slot++;
        if (slot == ORT_MAX_CUDA_DEVICES) break;
        rt->cuda_devices[slot] = devs[i];
        rt->n_cuda_devices++;
    }
    if (rt->n_cuda_devices == 0) {
        snprintf(rt->cuda_error, sizeof rt->cuda_error, "'%.500s' loaded but found no CUDA device", lib);
        return -1;
    }
    return 0;
}

/* Tries the classic options struct on a scratch session-options object: 0 when ORT accepts it. */
static int setup_legacy(ort_runtime *rt) {
    const OrtApi *api = rt->api;
    OrtSessionOptions *so = NULL;
    OrtStatus *st = api->CreateSessionOptions(&so);
    if (!st) {
        OrtCUDAProviderOptions o;
        memset(&o, 0, sizeof o);
        o.gpu_mem_limit = SIZE_MAX;
        o.do_copy_in_default_stream = 1;
        st = api->SessionOptionsAppendExecutionProvider_CUDA(so, &o);
    }
    if (so) api->ReleaseSessionOptions(so);
    if (!st) return 0;
    size_t used = strlen(rt->cuda_error);
    snprintf(rt->cuda_error + used, sizeof rt->cuda_error - used, "%sclassic CUDA options: %s", used ? "; " : "",
             api->GetErrorMessage(st));
    api->ReleaseStatus(st);
    return -1;
}

int ort_ep_cuda_devices(ort_runtime *rt, const char *lib, ort_cuda_api api, ls_err *err) {
    pthread_mutex_lock(&rt->ep_mu);
    if (rt->cuda == ORT_CUDA_UNTRIED) {
        char path[1100];
        if (lib && *lib) snprintf(path, sizeof path, "%s", lib);
        else default_lib(rt, path, sizeof path);
        /* Both ways load the same provider library through the same bridge: check it first. */
        if (check_cuda_build(rt) != 0) rt->cuda = ORT_CUDA_MISSING;
        else if (api != ORT_CUDA_API_CLASSIC && setup_ep_api(rt, path) == 0) rt->cuda = ORT_CUDA_EP_API;
        else if (api != ORT_CUDA_API_EP_DEVICE && setup_legacy(rt) == 0) rt->cuda = ORT_CUDA_LEGACY;
        else rt->cuda = ORT_CUDA_MISSING;
    }
    /* The classic path cannot list devices: a missing one shows when a session is created. */
    int n = rt->cuda == ORT_CUDA_EP_API ? rt->n_cuda_devices : rt->cuda == ORT_CUDA_LEGACY ? 1 : -1;
    if (n < 0)
        ls_fail(err, LS_EMODEL,
                "ONNX Runtime's CUDA provider is not available; it needs ORT's CUDA build and CUDA 13 + cuDNN 9 "
                "on the library path (or use provider cpu, or fallback: cpu). ORT said: %s",
                rt->cuda_error);
    pthread_mutex_unlock(&rt->ep_mu);
    return n;
}

const OrtEpDevice *ort_ep_cuda_device(ort_runtime *rt, int id) {
    pthread_mutex_lock(&rt->ep_mu);
    const OrtEpDevice *d =
        rt->cuda == ORT_CUDA_EP_API && id >= 0 && id < ORT_MAX_CUDA_DEVICES ? rt->cuda_devices[id] : NULL;
    pthread_mutex_unlock(&rt->ep_mu);
    return d;
}

static int append_ep_api(ort_runtime *rt, OrtSessionOptions *so, const ort_ep_cfg *cfg, const OrtEpDevice *dev,
                         ls_err *err) {
    if (cfg->cuda_graph > 0 && cfg->host_tensors)
        return ls_fail(err, LS_EINVAL, "cuda_graph: CUDA graphs need device tensors (device_tensors: true)");
    char id[16], limit[32], tf32[4], graph[4];
    snprintf(id, sizeof id, "%d", cfg->device_id);
    snprintf(limit, sizeof limit, "%zu", cfg->mem_limit ? cfg->mem_limit : (size_t)SIZE_MAX);
    snprintf(tf32, sizeof tf32, "%d", cfg->tf32 > 0);
    snprintf(graph, sizeof graph, "%d", cfg->cuda_graph > 0 || (cfg->cuda_graph < 0 && !cfg->host_tensors));
    const char *keys[] = {"device_id", "gpu_mem_limit", "cudnn_conv_algo_search", "use_tf32",
                          "enable_cuda_graph", "do_copy_in_default_stream"};
    const char *vals[] = {id, limit, CUDNN_NAMES[cfg->cudnn_search], tf32, graph, "1"};
    size_t n = sizeof keys / sizeof *keys;
    if (cfg->tf32 < 0) { /* ORT's default: drop the key */
        keys[3] = keys[n - 1], vals[3] = vals[n - 1];
        n--;
    }
    return ort_check(rt, rt->api->SessionOptionsAppendExecutionProvider_V2(so, rt->env, &dev, 1, keys, vals, n),
                     err, "adding the CUDA provider");
}

static int append_legacy(ort_runtime *rt, OrtSessionOptions *so, const ort_ep_cfg *cfg, ls_err *err) {
    if (cfg->cuda_graph > 0)
        return ls_fail(err, LS_EINVAL,
                       "cuda_graph: CUDA graphs need ONNX Runtime's EP-device API, which failed here (%s)",
                       rt->cuda_error);
    if (cfg->tf32 >= 0)
        return ls_fail(err, LS_EINVAL, "tf32: this ONNX Runtime's classic CUDA options cannot set TF32 (%s); "
                                       "leave tf32 unset", rt->cuda_error);
    OrtCUDAProviderOptions o;
    memset(&o, 0, sizeof o);
    o.device_id = cfg->device_id;
    o.cudnn_conv_algo_search = (OrtCudnnConvAlgoSearch)cfg->cudnn_search; /* same order as ORT's enum */
    o.gpu_mem_limit = cfg->mem_limit ? cfg->mem_limit : SIZE_MAX;
    o.do_copy_in_default_stream = 1;
    return ort_check(rt, rt->api->SessionOptionsAppendExecutionProvider_CUDA(so, &o), err,
                     "adding the CUDA provider");
}

int ort_ep_append(ort_runtime *rt, OrtSessionOptions *so, const ort_ep_cfg *cfg, char *desc, size_t desc_cap,
                  ls_err *err) {
    if (desc_cap) desc[0] = 0;
    if (!cfg || cfg->kind == ORT_EP_CPU) {
        if (desc_cap) snprintf(desc, desc_cap, "cpu");
        return 0;
    }
    int n = ort_ep_cuda_devices(rt, cfg->provider_lib, cfg->api, err);
    if (n < 0) return -1;
    if (cfg->api == ORT_CUDA_API_EP_DEVICE && rt->cuda != ORT_CUDA_EP_API)
        return ls_fail(err, LS_EMODEL, "the CUDA provider was set up with the classic options in this process; "
                                       "the EP-device API cannot be used as well");
    const OrtEpDevice *dev = cfg->api == ORT_CUDA_API_CLASSIC ? NULL : ort_ep_cuda_device(rt, cfg->device_id);
    if (rt->cuda == ORT_CUDA_EP_API && cfg->api != ORT_CUDA_API_CLASSIC && !dev)
        return ls_fail(err, LS_EMODEL, "CUDA device %d does not exist: ONNX Runtime sees %d CUDA device%s",
                       cfg->device_id, n, n == 1 ? "" : "s");
    int rc = dev ? append_ep_api(rt, so, cfg, dev, err) : append_legacy(rt, so, cfg, err);
    if (rc == 0 && desc_cap)
        snprintf(desc, desc_cap, "cuda:%d (%s, cuDNN %s, TF32 %s, CUDA graphs %s)", cfg->device_id,
                 dev ? "EP-device API" : "classic options", CUDNN_NAMES[cfg->cudnn_search],
                 cfg->tf32 < 0 ? "default" : cfg->tf32 ? "on" : "off",
                 dev && (cfg->cuda_graph > 0 || (cfg->cuda_graph < 0 && !cfg->host_tensors)) ? "on" : "off");
    return rc;
}
