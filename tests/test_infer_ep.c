/* test_infer_ep.c - choosing the execution provider (src/infer/ort_ep.h): names, and what happens
 * when CUDA is asked for. CI has no GPU, so there the CUDA provider must be reported missing with a
 * message that says what ORT answered and how to fall back; on a machine where it exists, a CUDA
 * session must load and agree with the CPU (demo UNet, tolerance 1e-4). A CPU-only ORT build is
 * refused for what it is before any CUDA provider library is loaded. */
#include "check.h"
#include "common/err.h"
#include "infer/ort_ep.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ort_runtime *rt;

TEST(provider_names_round_trip) {
    ort_ep_kind k;
    CHECK(ort_ep_kind_parse("cpu", &k) == 0 && k == ORT_EP_CPU && !strcmp(ort_ep_kind_name(k), "cpu"), "cpu");
    CHECK(ort_ep_kind_parse("cuda", &k) == 0 && k == ORT_EP_CUDA && !strcmp(ort_ep_kind_name(k), "cuda"), "cuda");
    CHECK(ort_ep_kind_parse("CUDA", &k) != 0 && ort_ep_kind_parse("", &k) != 0, "unknown names refused");
    ort_cuda_api api;
    CHECK(ort_cuda_api_parse("classic", &api) == 0 && api == ORT_CUDA_API_CLASSIC && ort_cuda_api_parse("v3", &api) != 0,
          "CUDA API names");
    ort_cudnn_search s;
    CHECK(ort_cudnn_search_parse("heuristic", &s) == 0 && s == ORT_CUDNN_HEURISTIC, "cudnn search");
    CHECK(ort_cudnn_search_parse("fastest", &s) != 0, "unknown search refused");
}

TEST(cpu_provider_is_described_and_puts_nothing_on_a_gpu) {
    ort_ep_cfg cpu = {.kind = ORT_EP_CPU};
    ort_model_opts o = {.ep = &cpu};
    ls_err e = {0};
    ort_model *m = ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, &e);
    CHECK(m, "%s", e.msg);
    if (!m) return;
    CHECK(ort_model_ep(m) == ORT_EP_CPU && ort_model_device(m) == -1, "on the CPU");
    CHECK(!strcmp(ort_model_ep_desc(m), "cpu"), "desc '%s'", ort_model_ep_desc(m));
    CHECK(ort_model_device_bytes(m) == 0, "no GPU memory");
    ort_model_destroy(m);
}

/* Runs the demo UNet (batch 2, deterministic inputs) with `ep`; returns the output or NULL. */
static float *run_demo(const ort_ep_cfg *ep, ls_err *e) {
    ort_model_opts o = {.ep = ep};
    ort_model *m = ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, e);
    static float img[2 * ORT_UNET_IMG_ELEMS], aud[2 * ORT_UNET_AUDIO_ELEMS];
    for (size_t i = 0; i < sizeof img / sizeof *img; i++) img[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (size_t i = 0; i < sizeof aud / sizeof *aud; i++) aud[i] = (float)((i * 40503u) % 200) / 100.0f - 1.0f;
    void *in[2] = {img, aud};
    float *out = malloc(2 * ORT_UNET_OUT_ELEMS * sizeof *out);
    ort_binding *b = m && out ? ort_binding_create(m, 2, in, out, e) : NULL;
    if (!b || ort_binding_run(b, 2, e) != 0) {
        free(out);
        out = NULL;
    }
    ort_binding_destroy(b);
    ort_model_destroy(m);
    return out;
}

TEST(cuda_is_either_missing_with_a_clear_error_or_agrees_with_the_cpu) {
    ls_err e = {0};
    int n = ort_ep_cuda_devices(rt, NULL, ORT_CUDA_API_AUTO, &e);
    ort_ep_cfg cuda = {.kind = ORT_EP_CUDA, .tf32 = 0};
    if (n < 0) {
        CHECK(e.code == LS_EMODEL && strstr(e.msg, "CUDA provider is not available") && strstr(e.msg, "fallback"),
              "missing provider explained: %s", e.msg);
        ls_err again = {0};
        CHECK(ort_ep_cuda_devices(rt, NULL, ORT_CUDA_API_AUTO, &again) < 0 && !strcmp(again.msg, e.msg), "same answer twice");
        ls_err load_err = {0};
        float *out = run_demo(&cuda, &load_err);
        CHECK(!out && load_err.code == LS_EMODEL && strstr(load_err.msg, "CUDA provider is not available"),
              "a CUDA model load fails the same way: %s", load_err.msg);
        free(out);
        return;
    }
    printf("  %d CUDA device(s): comparing with the CPU\n", n);
    ort_ep_cfg cpu = {.kind = ORT_EP_CPU};
    float *a = run_demo(&cpu, &e), *g = run_demo(&cuda, &e);
    CHECK(a && g, "both run: %s", e.msg);
    double worst = 0;
    for (size_t i = 0; a && g && i < 2 * ORT_UNET_OUT_ELEMS; i++) worst = fmax(worst, fabs((double)a[i] - g[i]));
    CHECK(worst <= 1e-4, "CUDA vs CPU max |diff| %.3g (tolerance 1e-4)", worst);
    free(a);
    free(g);
}

TEST(a_gpu_that_does_not_exist_is_refused) {
    ls_err e = {0};
    int n = ort_ep_cuda_devices(rt, NULL, ORT_CUDA_API_AUTO, &e);
    if (n < 0) return; /* covered above */
    ort_ep_cfg cuda = {.kind = ORT_EP_CUDA, .device_id = n + 3};
    ort_model_opts o = {.ep = &cuda};
    ort_model *m = ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, &e);
    CHECK(!m && e.code == LS_EMODEL && strstr(e.msg, "does not exist"), "%s", e.msg);
    ort_model_destroy(m);
}

/* A CPU-only ONNX Runtime build cannot host the CUDA provider library (its ProviderHostCPU lacks the
 * CUDA part, so the provider would call into unrelated functions): it must be refused for what it is,
 * before any provider file is loaded. A fresh runtime is handed a file that exists but is no provider
 * (the ORT library itself), so that only the build check can name the build. */
TEST(a_cpu_only_ort_build_is_refused_before_the_provider_is_loaded) {
    const OrtApi *api = ort_runtime_api(rt);
    OrtCUDAProviderOptionsV2 *opts = NULL;
    OrtStatus *st = api->CreateCUDAProviderOptions(&opts);
    int cuda_build = st == NULL;
    if (st) api->ReleaseStatus(st);
    else api->ReleaseCUDAProviderOptions(opts);
    ls_err e = {0};
    ort_runtime *fresh = ort_runtime_create(NULL, &e);
    CHECK(fresh, "%s", e.msg);
    int n = ort_ep_cuda_devices(fresh, ort_runtime_library(fresh), ORT_CUDA_API_EP_DEVICE, &e);
    ort_runtime_destroy(fresh);
    CHECK(n < 0 && e.code == LS_EMODEL && strstr(e.msg, "fallback"), "the ORT library is no CUDA provider: %s", e.msg);
    if (cuda_build) CHECK(!strstr(e.msg, "CPU-only build"), "a CUDA build is not refused as CPU-only: %s", e.msg);
    else CHECK(strstr(e.msg, "CPU-only build") && strstr(e.msg, "libonnxruntime.so of a CUDA build"),
               "CPU-only build named: %s", e.msg);
}

int main(void) {
    ls_err e = {0};
    rt = ort_runtime_create(NULL, &e);
    if (!rt) {
        fprintf(stderr, "cannot open ONNX Runtime: %s\n", e.msg);
        return 1;
    }
    RUN(provider_names_round_trip);
    RUN(cpu_provider_is_described_and_puts_nothing_on_a_gpu);
    RUN(cuda_is_either_missing_with_a_clear_error_or_agrees_with_the_cpu);
    RUN(a_gpu_that_does_not_exist_is_refused);
    RUN(a_cpu_only_ort_build_is_refused_before_the_provider_is_loaded);
    ort_runtime_destroy(rt);
    return check_summary();
}
