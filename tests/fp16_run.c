/* fp16_run.c - runs one model through src/infer (ort_model_load + ort_binding) on raw float32
 * files, for test_onnx_fp16.py to compare an fp16-converted model with its float32 original
 * exactly as lipsyncd would run them. Not a test by itself.
 *
 *   fp16_run unet|encoder MODEL.onnx BATCH IN0.f32 [IN1.f32] OUT.f32 [REPEATS]
 *
 * Files are raw little-endian float32, BATCH items back to back in the role's layout
 * (ort_model.h). With REPEATS > 0 the run is repeated and "ms_per_run <min>" printed to stdout. */
#include "common/err.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fp16_run: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

/* Reads exactly n floats from path into a new buffer. */
static float *read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open", path);
    float *p = malloc(n * sizeof *p + 1);
    size_t got = p ? fread(p, sizeof *p, n + 1, f) : 0;
    fclose(f);
    if (got != n) die("wrong size (not BATCH items of the role's input)", path);
    return p;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 6) die("usage: fp16_run unet|encoder MODEL BATCH IN0.f32 [IN1.f32] OUT.f32 [REPEATS]", NULL);
    ort_role role = strcmp(argv[1], "unet") == 0 ? ORT_ROLE_UNET : ORT_ROLE_ENCODER;
    int n_in = ort_role_input_count(role);
    if (argc < 5 + n_in) die("missing arguments", NULL);
    int batch = atoi(argv[3]);
    if (batch < 1 || batch > 64) die("BATCH must be 1..64", argv[3]);
    const char *out_path = argv[4 + n_in];
    int repeats = argc > 5 + n_in ? atoi(argv[5 + n_in]) : 0;

    ls_err e = {0};
    ort_runtime *rt = ort_runtime_create(NULL, &e);
    if (!rt) die("runtime", e.msg);
    ort_model_opts opts = {.intra_threads = 2, .no_spin = 1};
    ort_model *m = ort_model_load(rt, argv[2], role, &opts, &e);
    if (!m) die("load", e.msg);
    float *in[2] = {0};
    for (int i = 0; i < n_in; i++) in[i] = read_f32(argv[4 + i], (size_t)batch * ort_role_input_elems(role, i));
    size_t n_out = (size_t)batch * ort_role_output_elems(role);
    float *out = calloc(n_out, sizeof *out);
    ort_binding *b = out ? ort_binding_create(m, batch, (void *const *)in, out, &e) : NULL;
    if (!b || ort_binding_run(b, batch, &e) != 0) die("run", e.msg);
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ms();
        if (ort_binding_run(b, batch, &e) != 0) die("run", e.msg);
        double dt = now_ms() - t0;
        if (dt < best) best = dt;
    }
    if (repeats > 0) printf("ms_per_run %.3f\n", best);
    FILE *f = fopen(out_path, "wb");
    if (!f || fwrite(out, sizeof *out, n_out, f) != n_out || fclose(f) != 0) die("cannot write", out_path);
    ort_binding_destroy(b);
    ort_model_destroy(m);
    ort_runtime_destroy(rt);
    for (int i = 0; i < n_in; i++) free(in[i]);
    free(out);
    return 0;
}
