/* bench_infer.c - encoder and UNet latency through ort_binding_run, for several session settings.
 *
 *   bench_infer [--models DIR] [--repeats N] [--unet FILE] [--encoder FILE]
 *
 * For each setting (ORT defaults; 1 thread; 2 threads; 2 threads without spinning) it times the
 * audio encoder at batch 1 and 41 and the UNet at batch 1 and 8: one warm-up run, then N timed
 * runs; prints median / min / max milliseconds per run and per item. Not a test: numbers depend
 * on the machine and its load. */
#include "bench_time.h"
#include "common/err.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *label;
    ort_model_opts opts;
    int use_defaults; /* pass NULL options: every ORT default */
} setting;


/* Times `repeats` runs of batch `batch`; fills med/min/max in ms. Returns -1 on error. */
static int time_model(ort_model *m, int batch, int repeats, double out[3], ls_err *err) {
    ort_role role = ort_model_role(m);
    int n_in = ort_role_input_count(role);
    float *in[2] = {NULL, NULL}, *out_buf = NULL;
    ort_binding *b = NULL;
    double *t = calloc((size_t)repeats, sizeof *t);
    int rc = -1;
    for (int j = 0; j < n_in; j++) {
        size_t n = (size_t)batch * ort_role_input_elems(role, j);
        in[j] = malloc(n * sizeof(float));
        if (!in[j]) goto done;
        /* Deterministic values in the ranges the models see (mel in [-4, 4], images in [0, 1]). */
        unsigned s = 12345u + (unsigned)j;
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            float u = (float)(s >> 8) / 16777216.0f;
            in[j][i] = role == ORT_ROLE_ENCODER ? 8 * u - 4 : u;
        }
    }
    out_buf = malloc((size_t)batch * ort_role_output_elems(role) * sizeof(float));
    if (!t || !out_buf) goto done;
    b = ort_binding_create(m, batch, (void *const *)in, out_buf, err);
    if (!b || ort_binding_run(b, batch, err) != 0) goto done; /* warm-up: first run sizes ORT's arena */
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now_ms();
        if (ort_binding_run(b, batch, err) != 0) goto done;
        t[r] = bench_now_ms() - t0;
    }
    qsort(t, (size_t)repeats, sizeof *t, bench_cmp);
    out[0] = t[repeats / 2];
    out[1] = t[0];
    out[2] = t[repeats - 1];
    rc = 0;
done:
    ort_binding_destroy(b);
    free(in[0]), free(in[1]), free(out_buf), free(t);
    return rc;
}

int main(int argc, char **argv) {
    const char *dir = "build/models", *unet = NULL, *enc = NULL;
    int repeats = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--unet") && i + 1 < argc) unet = argv[++i];
        else if (!strcmp(argv[i], "--encoder") && i + 1 < argc) enc = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--models DIR] [--repeats N] [--unet FILE] [--encoder FILE]\n", argv[0]);
            return 2;
        }
    }
    if (repeats < 1) repeats = 1;
    char unet_path[1024], enc_path[1024];
    snprintf(unet_path, sizeof unet_path, "%s/unet328.onnx", dir);
    snprintf(enc_path, sizeof enc_path, "%s/ave_encoder.onnx", dir);
    if (unet) snprintf(unet_path, sizeof unet_path, "%s", unet);
    if (enc) snprintf(enc_path, sizeof enc_path, "%s", enc);

    ls_err err = {0};
    ort_runtime *rt = ort_runtime_create(NULL, &err);
    if (!rt) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    const setting settings[] = {
        {"ORT defaults", {0}, 1},
        {"1 thread", {.intra_threads = 1, .inter_threads = 1}, 0},
        {"2 threads", {.intra_threads = 2, .inter_threads = 1}, 0},
        {"2 threads, no spin", {.intra_threads = 2, .inter_threads = 1, .no_spin = 1}, 0},
    };
    const struct { const char *path; ort_role role; int batch[2]; } models[] = {
        {enc_path, ORT_ROLE_ENCODER, {1, 41}},
        {unet_path, ORT_ROLE_UNET, {1, 8}},
    };
    printf("ONNX Runtime %s, %d repeats after one warm-up; ms per run: median (min-max); ms per item\n",
           ort_runtime_version(rt), repeats);
    printf("%-20s %-8s %5s %26s %10s\n", "setting", "model", "batch", "ms/run med (min-max)", "ms/item");
    for (size_t s = 0; s < sizeof settings / sizeof settings[0]; s++) {
        for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
            double lt = bench_now_ms();
            ort_model *m = ort_model_load(rt, models[k].path, models[k].role,
                                          settings[s].use_defaults ? NULL : &settings[s].opts, &err);
            if (!m) {
                fprintf(stderr, "bench_infer: %s\n", err.msg);
                ort_runtime_destroy(rt);
                return 1;
            }
            lt = bench_now_ms() - lt;
            for (int bi = 0; bi < 2; bi++) {
                int batch = models[k].batch[bi];
                double t[3];
                if (time_model(m, batch, repeats, t, &err) != 0) {
                    fprintf(stderr, "bench_infer: %s\n", err.msg);
                    ort_model_destroy(m);
                    ort_runtime_destroy(rt);
                    return 1;
                }
                printf("%-20s %-8s %5d %10.1f (%6.1f-%6.1f) %10.2f\n", settings[s].label,
                       models[k].role == ORT_ROLE_UNET ? "unet" : "encoder", batch, t[0], t[1], t[2], t[0] / batch);
            }
            printf("%-20s %-8s load %.0f ms, %.1f MB\n", "", models[k].role == ORT_ROLE_UNET ? "unet" : "encoder", lt,
                   ort_model_bytes(m) / 1e6);
            ort_model_destroy(m);
        }
    }
    ort_runtime_destroy(rt);
    return 0;
}
