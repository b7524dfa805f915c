/* test_infer.c - ONNX Runtime loading, model validation and bindings, against the generated models
 * in $LS_BUILD_DIR/models (tools/gen_models.py) and the numpy reference outputs written with them. */
#include "check.h"
#include "common/err.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ort_runtime *rt;

/* Reads a raw float32 file of exactly n floats; NULL on any mismatch. */
static float *read_f32(const char *name, size_t n) {
    FILE *f = fopen(check_model(name), "rb");
    if (!f) return NULL;
    float *p = malloc(n * sizeof *p + 1);
    size_t got = p ? fread(p, sizeof *p, n + 1, f) : 0;
    fclose(f);
    if (got != n) {
        free(p);
        return NULL;
    }
    return p;
}

static ort_model *load(const char *name, ort_role role, const ort_model_opts *o) {
    ls_err e = {0};
    ort_model *m = ort_model_load(rt, check_model(name), role, o, &e);
    if (!m) fprintf(stderr, "  loading %s: %s\n", name, e.msg);
    return m;
}

/* Runs `model` on n items of the given inputs and returns a fresh output array (caller frees). */
static float *run_model(ort_model *m, int max_batch, int n, float *const *inputs) {
    ort_role role = ort_model_role(m);
    float *out = calloc((size_t)max_batch * ort_role_output_elems(role), sizeof *out);
    ls_err e = {0};
    ort_binding *b = out ? ort_binding_create(m, max_batch, (void *const *)inputs, out, &e) : NULL;
    if (!b || ort_binding_run(b, n, &e) != 0) {
        fprintf(stderr, "  run: %s\n", e.msg);
        free(out);
        out = NULL;
    }
    ort_binding_destroy(b);
    return out;
}

/* CPU sessions draw on the runtime's one arena: one model's run grows the arena that a second
 * model's session reports too, and the second model's run of the same shapes reuses it instead
 * of holding a peak of its own (ort_runtime.h). */
TEST(cpu_sessions_share_the_runtimes_arena) {
    CHECK(ort_runtime_shared_cpu_arena(rt), "the runtime registered a shared CPU arena");
    ort_model *a = load("demo_unet.onnx", ORT_ROLE_UNET, NULL), *b = load("demo_unet.onnx", ORT_ROLE_UNET, NULL);
    CHECK(a && b, "two sessions of the demo UNet");
    enum { B = 4 };
    float *img = calloc((size_t)B * ORT_UNET_IMG_ELEMS, sizeof *img), *aud = calloc((size_t)B * ORT_UNET_AUDIO_ELEMS, sizeof *aud);
    float *inputs[2] = {img, aud};
    size_t loaded = b ? ort_model_host_bytes(b) : 0;
    float *out_a = img && aud && a ? run_model(a, B, B, inputs) : NULL;
    size_t a_after_a = a ? ort_model_host_bytes(a) : 0, b_after_a = b ? ort_model_host_bytes(b) : 0;
    float *out_b = out_a && b ? run_model(b, B, B, inputs) : NULL;
    size_t b_after_b = b ? ort_model_host_bytes(b) : 0;
    CHECK(out_a && out_b, "both ran");
    CHECK(a_after_a > loaded, "model A's run grew its arena (%zu -> %zu bytes)", loaded, a_after_a);
    CHECK(b_after_a == a_after_a, "model B, not run, reports the same arena (%zu, A %zu)", b_after_a, a_after_a);
    CHECK(b_after_b <= a_after_a + a_after_a / 4, "model B's run reused it (%zu -> %zu bytes)", a_after_a, b_after_b);
    printf("     shared CPU arena: %zu bytes loaded, %zu after model A ran, %zu after model B ran\n", loaded,
           a_after_a, b_after_b);
    free(out_a);
    free(out_b);
    free(img);
    free(aud);
    ort_model_destroy(a);
    ort_model_destroy(b);
}

TEST(runtime_opens_default_library_and_refuses_a_bad_path) {
    CHECK(rt != NULL, "the default ONNX Runtime opens");
    CHECK(strncmp(ort_runtime_version(rt), "1.", 2) == 0, "version '%s'", ort_runtime_version(rt));
    ls_err e = {0};
    CHECK(ort_runtime_create("/nonexistent/libonnxruntime.so", &e) == NULL, "bad path fails");
    CHECK(e.code == LS_EIO && strstr(e.msg, "/nonexistent/libonnxruntime.so"), "message names the path: %s", e.msg);
    CHECK(ort_runtime_create("libc.so.6", &e) == NULL && strstr(e.msg, "not ONNX Runtime"), "libc: %s", e.msg);
}

TEST(generated_models_load_with_the_expected_batch_dims) {
    static const struct { const char *name; ort_role role; int batch; } cases[] = {
        {"ave_encoder.onnx", ORT_ROLE_ENCODER, 0}, {"ave_encoder_b1.onnx", ORT_ROLE_ENCODER, 1},
        {"demo_encoder.onnx", ORT_ROLE_ENCODER, 0}, {"demo_encoder_b2.onnx", ORT_ROLE_ENCODER, 2},
        {"unet328.onnx", ORT_ROLE_UNET, 0},       {"unet328_b1.onnx", ORT_ROLE_UNET, 1},
        {"demo_unet.onnx", ORT_ROLE_UNET, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ort_model *m = load(cases[i].name, cases[i].role, NULL);
        CHECK(m != NULL, "%s loads", cases[i].name);
        int batch = ort_model_batch(m);
        size_t bytes = ort_model_bytes(m);
        ort_model_destroy(m);
        CHECK(batch == cases[i].batch, "%s: batch %d, expected %d", cases[i].name, batch, cases[i].batch);
        CHECK(bytes > 1000, "%s: memory estimate %zu", cases[i].name, bytes);
    }
}

/* Tolerance: ORT and numpy sum in different orders (and ORT fuses ops); 1e-4 relative to O(1)
 * activations is far below any wiring error (wrong stride/pad/order changes values by O(1)). */
TEST(encoder_matches_numpy_reference_element_by_element_batch_3) {
    float *mel = read_f32("ave_encoder.ref_mel.f32", 3 * ORT_ENC_MEL_ELEMS);
    float *ref = read_f32("ave_encoder.ref_features.f32", 3 * ORT_ENC_FEAT_ELEMS);
    CHECK(mel && ref, "reference files present");
    ort_model *m = load("ave_encoder.onnx", ORT_ROLE_ENCODER, NULL);
    CHECK(m, "loads");
    float *out = run_model(m, 3, 3, &mel);
    ort_model_destroy(m);
    CHECK(out, "runs");
    for (int i = 0; i < 3 * ORT_ENC_FEAT_ELEMS; i++)
        CHECK_NEAR(out[i], ref[i], 1e-4 * (1 + fabs(ref[i])), "feature %d of item %d", i % 512, i / 512);
    free(out), free(mel), free(ref);
}

TEST(encoder_batch_1_and_fixed_batch_variant_equal_dynamic_batch_3) {
    float *mel = read_f32("ave_encoder.ref_mel.f32", 3 * ORT_ENC_MEL_ELEMS);
    CHECK(mel, "reference mel present");
    ort_model *dyn = load("ave_encoder.onnx", ORT_ROLE_ENCODER, NULL);
    ort_model *b1 = load("ave_encoder_b1.onnx", ORT_ROLE_ENCODER, NULL);
    CHECK(dyn && b1, "both load");
    float *out3 = run_model(dyn, 3, 3, &mel);
    float *out1 = run_model(dyn, 3, 1, &mel);   /* batch 1 through a max-3 binding */
    float *fixed = run_model(b1, 3, 3, &mel);   /* three chunks of one */
    ort_model_destroy(dyn), ort_model_destroy(b1);
    CHECK(out3 && out1 && fixed, "all run");
    for (int i = 0; i < ORT_ENC_FEAT_ELEMS; i++) CHECK_NEAR(out1[i], out3[i], 1e-5, "batch 1 vs 3, feature %d", i);
    for (int i = 0; i < 3 * ORT_ENC_FEAT_ELEMS; i++) CHECK_NEAR(fixed[i], out3[i], 1e-5, "fixed-1 vs dynamic, %d", i);
    free(out3), free(out1), free(fixed), free(mel);
}

TEST(unet_matches_numpy_reference_and_fixed_batch_variant_agrees) {
    float *img = read_f32("unet328.ref_input.f32", ORT_UNET_IMG_ELEMS);
    float *aud = read_f32("unet328.ref_audio.f32", ORT_UNET_AUDIO_ELEMS);
    float *ref = read_f32("unet328.ref_output.f32", ORT_UNET_OUT_ELEMS);
    CHECK(img && aud && ref, "reference files present");
    /* Batch of 3: the reference item, then two variants (flipped image, scaled audio). */
    float *imgs = malloc(3 * (size_t)ORT_UNET_IMG_ELEMS * sizeof *imgs);
    float *auds = malloc(3 * (size_t)ORT_UNET_AUDIO_ELEMS * sizeof *auds);
    CHECK(imgs && auds, "alloc");
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < ORT_UNET_IMG_ELEMS; i++)
            imgs[(size_t)k * ORT_UNET_IMG_ELEMS + i] = k == 1 ? 1 - img[i] : img[i];
        for (int i = 0; i < ORT_UNET_AUDIO_ELEMS; i++) auds[(size_t)k * ORT_UNET_AUDIO_ELEMS + i] = aud[i] * (1 + k);
    }
    float *in[2] = {imgs, auds};
    ort_model *dyn = load("unet328.onnx", ORT_ROLE_UNET, NULL);
    ort_model *b1 = load("unet328_b1.onnx", ORT_ROLE_UNET, NULL);
    CHECK(dyn && b1, "both load");
    float *out3 = run_model(dyn, 3, 3, in);
    float *fixed = run_model(b1, 3, 3, in);
    ort_model_destroy(dyn), ort_model_destroy(b1);
    CHECK(out3 && fixed, "both run");
    for (int i = 0; i < ORT_UNET_OUT_ELEMS; i++)
        CHECK_NEAR(out3[i], ref[i], 1e-4, "output %d (c%d y%d x%d) vs numpy", i, i / 102400, i / 320 % 320, i % 320);
    for (size_t i = 0; i < 3 * (size_t)ORT_UNET_OUT_ELEMS; i++) {
        CHECK(isfinite(out3[i]) && out3[i] >= 0 && out3[i] <= 1, "sigmoid output %zu = %g", i, out3[i]);
        CHECK_NEAR(fixed[i], out3[i], 1e-5, "fixed-1 vs dynamic, element %zu", i);
    }
    /* The other items really are different inputs (so batching mix-ups would show). */
    double diff = 0;
    for (int i = 0; i < ORT_UNET_OUT_ELEMS; i++) diff = fmax(diff, fabs(out3[ORT_UNET_OUT_ELEMS + i] - out3[i]));
    CHECK(diff > 0.01, "item 1 differs from item 0 (max diff %g)", diff);
    free(out3), free(fixed), free(imgs), free(auds), free(img), free(aud), free(ref);
}

TEST(wrong_io_models_fail_naming_the_file_and_tensor) {
    ls_err e = {0};
    CHECK(!ort_model_load(rt, check_model("bad_name_encoder.onnx"), ORT_ROLE_ENCODER, NULL, &e), "bad name refused");
    CHECK(e.code == LS_EMODEL && strstr(e.msg, "bad_name_encoder.onnx") && strstr(e.msg, "'mel_spectrogram'") &&
              strstr(e.msg, "'mel'"),
          "message: %s", e.msg);
    CHECK(!ort_model_load(rt, check_model("bad_shape_unet.onnx"), ORT_ROLE_UNET, NULL, &e), "bad shape refused");
    CHECK(e.code == LS_EMODEL && strstr(e.msg, "bad_shape_unet.onnx") && strstr(e.msg, "'audio' dimension 2 is 8"),
          "message: %s", e.msg);
    CHECK(!ort_model_load(rt, check_model("demo_encoder.onnx"), ORT_ROLE_UNET, NULL, &e), "encoder as UNet refused");
    CHECK(e.code == LS_EMODEL && strstr(e.msg, "no input named 'input'"), "message: %s", e.msg);
}

TEST(missing_and_garbage_files_fail_cleanly) {
    ls_err e = {0};
    CHECK(!ort_model_load(rt, "/nonexistent/model.onnx", ORT_ROLE_UNET, NULL, &e), "missing refused");
    CHECK(e.code == LS_ENOTFOUND && strstr(e.msg, "/nonexistent/model.onnx"), "message: %s", e.msg);
    char path[] = "/tmp/ls_garbage_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    const char junk[] = "this is not a protobuf \x01\x02\xff\xfe model";
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk, "write");
    close(fd);
    ort_model *m = ort_model_load(rt, path, ORT_ROLE_ENCODER, NULL, &e);
    unlink(path);
    CHECK(!m, "garbage refused");
    CHECK((e.code == LS_EFORMAT || e.code == LS_EMODEL) && strstr(e.msg, path), "code %s, message: %s",
          ls_code_name(e.code), e.msg);
}

TEST(binding_rejects_batches_outside_its_range_and_counts_runs) {
    ort_model *m = load("demo_encoder.onnx", ORT_ROLE_ENCODER, NULL);
    CHECK(m, "loads");
    static float mel[2 * ORT_ENC_MEL_ELEMS], feat[2 * ORT_ENC_FEAT_ELEMS];
    float *in = mel;
    ls_err e = {0};
    ort_binding *b = ort_binding_create(m, 2, (void *const *)&in, feat, &e);
    CHECK(b, "binding: %s", e.msg);
    int r0 = ort_binding_run(b, 0, &e), r3 = ort_binding_run(b, 3, &e);
    int ok = ort_binding_run(b, 2, &e) == 0 && ort_binding_run(b, 1, &e) == 0;
    ort_model_stats st;
    ort_model_stats_get(m, &st);
    ort_binding_destroy(b);
    ort_model_destroy(m);
    CHECK(r0 == -1 && r3 == -1 && e.code == LS_EINVAL, "0 and 3 refused for max 2");
    CHECK(ok, "1 and 2 run");
    CHECK(st.runs == 2 && st.items == 3 && st.failures == 0, "runs %llu items %llu", (unsigned long long)st.runs,
          (unsigned long long)st.items);
}

/* ---- the demo pair ------------------------------------------------------------------------- */

/* Golden speech mel rows start..start+15, transposed to the encoder's [1,80,16] layout. */
static int golden_window(int start, float *out) {
    FILE *f = fopen(check_golden("speech_640ms_mel.json"), "rb");
    if (!f) return -1;
    static char text[1 << 21];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *j = cJSON_Parse(text);
    cJSON *mel = cJSON_GetObjectItem(j, "mel_spectrogram");
    int rc = cJSON_GetArraySize(mel) == 52 ? 0 : -1;
    for (int t = 0; t < 16 && rc == 0; t++) {
        cJSON *row = cJSON_GetArrayItem(mel, start + t);
        if (cJSON_GetArraySize(row) != 80) rc = -1;
        for (int b = 0; b < 80 && rc == 0; b++) out[b * 16 + t] = (float)cJSON_GetArrayItem(row, b)->valuedouble;
    }
    cJSON_Delete(j);
    return rc;
}

static int in_mouth(int x, int y) {
    double dx = (x - 160) / 64.0, dy = (y - 120) / 34.0;
    return dx * dx + dy * dy <= 1.0;
}

TEST(demo_encoder_is_zero_in_silence_and_grows_with_loudness) {
    static float mel[3 * ORT_ENC_MEL_ELEMS];
    for (int i = 0; i < ORT_ENC_MEL_ELEMS; i++) mel[i] = -4.0f;            /* silence */
    CHECK(golden_window(8, mel + ORT_ENC_MEL_ELEMS) == 0, "golden quiet window");   /* speech onset */
    CHECK(golden_window(28, mel + 2 * ORT_ENC_MEL_ELEMS) == 0, "golden loud window"); /* full speech */
    float *in = mel;
    ort_model *m = load("demo_encoder.onnx", ORT_ROLE_ENCODER, NULL);
    ort_model *b2 = load("demo_encoder_b2.onnx", ORT_ROLE_ENCODER, NULL);
    CHECK(m && b2, "load");
    float *f = run_model(m, 3, 3, &in);
    float *g = run_model(b2, 3, 3, &in); /* one chunk of 2 plus a padded chunk for the third */
    ort_model_destroy(m), ort_model_destroy(b2);
    CHECK(f && g, "run");
    for (int i = 0; i < 512; i++) {
        CHECK(f[i] == 0.0f, "silence feature %d = %g, expected exactly 0", i, f[i]);
        CHECK(f[512 + i] > 0.02f && f[1024 + i] > f[512 + i] + 0.1f, "feature %d: quiet %g < loud %g", i, f[512 + i],
              f[1024 + i]);
    }
    for (int i = 0; i < 3 * 512; i++) CHECK_NEAR(g[i], f[i], 1e-6, "fixed-batch-2 model, element %d", i);
    free(f), free(g);
}

TEST(demo_unet_keeps_the_face_in_silence_and_opens_the_mouth_for_speech) {
    static float mel[2 * ORT_ENC_MEL_ELEMS], feat[2 * 512], aud[2 * ORT_UNET_AUDIO_ELEMS];
    for (int i = 0; i < ORT_ENC_MEL_ELEMS; i++) mel[i] = -4.0f;
    CHECK(golden_window(28, mel + ORT_ENC_MEL_ELEMS) == 0, "golden loud window");
    ort_model *enc = load("demo_encoder.onnx", ORT_ROLE_ENCODER, NULL);
    ort_model *unet = load("demo_unet.onnx", ORT_ROLE_UNET, NULL);
    CHECK(enc && unet, "load");
    float *in = mel;
    float *f = run_model(enc, 2, 2, &in);
    CHECK(f, "encoder runs");
    memcpy(feat, f, sizeof feat);
    free(f);
    /* [32,16,16] audio block: the item's feature row repeated for all 16 window rows. */
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 16; r++)
            memcpy(aud + k * ORT_UNET_AUDIO_ELEMS + r * 512, feat + k * 512, 512 * sizeof(float));
    /* Textured face: real channels 0-2, then the same with the lower-face rectangle masked. */
    float *img = malloc(2 * (size_t)ORT_UNET_IMG_ELEMS * sizeof *img);
    CHECK(img, "alloc");
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 6; c++)
            for (int y = 0; y < 320; y++)
                for (int x = 0; x < 320; x++) {
                    float v = 0.5f + 0.35f * sinf(0.11f * x + 0.7f * (c % 3)) * cosf(0.07f * y + 0.3f * (c % 3));
                    if (c >= 3 && x >= 5 && x <= 314 && y >= 5 && y <= 309) v = 0;
                    img[(size_t)k * ORT_UNET_IMG_ELEMS + ((size_t)c * 320 + y) * 320 + x] = v;
                }
    float *uin[2] = {img, aud};
    float *out = run_model(unet, 2, 2, uin);
    ort_model_destroy(enc), ort_model_destroy(unet);
    CHECK(out, "UNet runs");
    double mouth_diff = 0;
    int mouth_px = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 320; y++)
            for (int x = 0; x < 320; x++) {
                size_t i = ((size_t)c * 320 + y) * 320 + x;
                CHECK_NEAR(out[i], img[i], 1e-5, "silence: c%d y%d x%d equals the input", c, y, x);
                double d = fabs(out[ORT_UNET_OUT_ELEMS + i] - img[ORT_UNET_IMG_ELEMS + i]);
                if (in_mouth(x, y)) {
                    mouth_diff += d;
                    mouth_px++;
                } else {
                    CHECK(d <= 1e-6, "speech: c%d y%d x%d outside the mouth changed by %g", c, y, x, d);
                }
            }
    CHECK(mouth_diff / mouth_px > 0.05, "speech: mean change in the mouth ellipse %g > 0.05", mouth_diff / mouth_px);
    free(out), free(img);
}

TEST(optimized_model_cache_is_written_then_reused) {
    char dir[] = "/tmp/ls_optcache_XXXXXX";
    CHECK(mkdtemp(dir), "temp dir");
    char cache[256];
    snprintf(cache, sizeof cache, "%s/ave_encoder.opt.onnx", dir);
    ort_model_opts o = {.intra_threads = 1, .optimized_path = cache};
    float *mel = read_f32("ave_encoder.ref_mel.f32", 3 * ORT_ENC_MEL_ELEMS);     /* item 0 is used */
    float *ref = read_f32("ave_encoder.ref_features.f32", 3 * ORT_ENC_FEAT_ELEMS);
    CHECK(mel && ref, "reference");
    ort_model *m1 = load("ave_encoder.onnx", ORT_ROLE_ENCODER, &o);
    int written = access(cache, R_OK) == 0;
    ort_model *m2 = load("ave_encoder.onnx", ORT_ROLE_ENCODER, &o); /* from the cache this time */
    float *a = m2 ? run_model(m2, 1, 1, &mel) : NULL;
    ort_model_destroy(m1), ort_model_destroy(m2);
    unlink(cache);
    rmdir(dir);
    CHECK(m1 && written, "first load writes %s", cache);
    CHECK(a, "cached model loads and runs");
    for (int i = 0; i < ORT_ENC_FEAT_ELEMS; i++) CHECK_NEAR(a[i], ref[i], 1e-4 * (1 + fabs(ref[i])), "feature %d", i);
    free(a), free(mel), free(ref);
}

int main(void) {
    ls_err e = {0};
    rt = ort_runtime_create(NULL, &e);
    if (!rt) fprintf(stderr, "ONNX Runtime: %s\n", e.msg);
    RUN(runtime_opens_default_library_and_refuses_a_bad_path);
    RUN(cpu_sessions_share_the_runtimes_arena);
    if (!rt) return check_summary();
    RUN(generated_models_load_with_the_expected_batch_dims);
    RUN(encoder_matches_numpy_reference_element_by_element_batch_3);
    RUN(encoder_batch_1_and_fixed_batch_variant_equal_dynamic_batch_3);
    RUN(unet_matches_numpy_reference_and_fixed_batch_variant_agrees);
    RUN(wrong_io_models_fail_naming_the_file_and_tensor);
    RUN(missing_and_garbage_files_fail_cleanly);
    RUN(binding_rejects_batches_outside_its_range_and_counts_runs);
    RUN(demo_encoder_is_zero_in_silence_and_grows_with_loudness);
    RUN(demo_unet_keeps_the_face_in_silence_and_opens_the_mouth_for_speech);
    RUN(optimized_model_cache_is_written_then_reused);
    ort_runtime_destroy(rt);
    return check_summary();
}
