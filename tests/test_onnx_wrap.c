/* test_onnx_wrap.c - the uint8-wrapped UNet (infer/onnx_wrap.h) gives byte for byte what the float
 * path gives: prep_input_from_crop -> original model -> paste_pred_to_crop, on real crops of the
 * demo avatar and synthetic ones, for the demo UNet and the full-size unet328 (dynamic and fixed
 * batch); NaN/inf/out-of-range outputs map as paste.c's to_u8; bad models fail with the right code.
 * Models: $LS_BUILD_DIR/models (tools/gen_models.py); avatar: $LS_BUILD_DIR/avatars/demo. */
#include "check.h"
#include "onnx_wrap_fixture.h"

#include "avatar/avatar.h"
#include "common/err.h"
#include "image/paste.h"
#include "image/prepare.h"
#include "infer/onnx_wrap.h"

#include <stdint.h>

#define CROP PREP_CROP_BYTES
#define AUDIO (32 * 16 * 16)
#define OUT_U8 ((size_t)PREP_SIZE * PREP_SIZE * 3)
#define MAX_B 6

static uint8_t crops[MAX_B * CROP]; /* the crops a test runs, filled per test */
static float audio[MAX_B * AUDIO];

static const char *build_path(const char *rel) {
    static char path[1024];
    const char *dir = getenv("LS_BUILD_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../build", rel);
    return path;
}

static void *read_file(const char *rel, size_t *len) {
    FILE *f = fopen(build_path(rel), "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = n > 0 ? malloc((size_t)n) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) free(p), p = NULL;
    fclose(f);
    *len = p ? (size_t)n : 0;
    return p;
}

static uint32_t rng = 12345;
static uint32_t next(void) { return rng = rng * 1664525u + 1013904223u; }
static float uniform(void) { return (float)(next() >> 8) / 16777216.0f; }

/* Items 0..1: real crops of the demo avatar (frames 0 and 1 through prep_frame); then all 0, all
 * 255, random bytes; then a copy of item 0. Audio: uniform in [-1, 1). */
static int fill_inputs(void) {
    ls_err e = {0};
    char frames[1024], boxes[1024]; /* build_path's buffer is reused */
    snprintf(frames, sizeof frames, "%s", build_path("avatars/demo/frames"));
    snprintf(boxes, sizeof boxes, "%s", build_path("avatars/demo/crop_rects.json"));
    avatar_parts p = {.name = "demo", .frames_dir = frames, .boxes_path = boxes, .max_frames = 2,
                      .unet_path = "unused", .encoder_path = "unused"}; /* paths only copied */
    avatar *av = avatar_load_parts(&p, &e);
    if (!av) return fprintf(stderr, "  demo avatar: %s\n", e.msg), -1;
    resize_scratch s;
    static float input[PREP_INPUT_FLOATS];
    int rc = resize_scratch_init(&s, PREP_SCRATCH_SIDE, PREP_SCRATCH_SIDE, &e);
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = prep_frame(avatar_frame(av, i), av->width, av->height, (size_t)av->width * 3, av->boxes[i],
                        crops + i * CROP, input, &s, &e);
    if (rc) fprintf(stderr, "  prep: %s\n", e.msg);
    resize_scratch_free(&s);
    avatar_free(av);
    memset(crops + 2 * CROP, 0, CROP);
    memset(crops + 3 * CROP, 255, CROP);
    for (size_t i = 0; i < CROP; i++) crops[4 * CROP + i] = (uint8_t)(next() >> 24);
    memcpy(crops + 5 * CROP, crops, CROP);
    for (size_t i = 0; i < sizeof audio / sizeof *audio; i++) audio[i] = 2 * uniform() - 1;
    return rc;
}

static int inputs_ready;

/* Runs items first..first+batch-1 through the float model and through its wrapping, and counts the
 * bytes where output_u8 differs from paste_pred_to_crop of the float output (expected: none). */
static long mismatches(OrtSession *f, OrtSession *w, int first, int batch) {
    static float input[MAX_B * PREP_INPUT_FLOATS], pred[MAX_B * 3 * 320 * 320];
    static uint8_t out[MAX_B * OUT_U8], ref[CROP];
    const uint8_t *c = crops + (size_t)first * CROP;
    for (int b = 0; b < batch; b++) prep_input_from_crop(c + b * CROP, input + (size_t)b * PREP_INPUT_FLOATS);
    float *a = audio + (size_t)first * AUDIO;
    if (fx_run(f, 0, batch, input, a, pred) || fx_run(w, 1, batch, (void *)c, a, out)) return -1;
    long bad = 0;
    for (int b = 0; b < batch; b++) {
        memcpy(ref, c + b * CROP, CROP);
        paste_pred_to_crop(pred + (size_t)b * 3 * 320 * 320, ref);
        for (int y = 0; y < PREP_SIZE; y++)
            for (int x = 0; x < PREP_SIZE * 3; x++) {
                uint8_t want = ref[((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3 + x];
                uint8_t got = out[(size_t)b * OUT_U8 + (size_t)y * PREP_SIZE * 3 + x];
                if (want != got && bad++ == 0)
                    fprintf(stderr, "  item %d y %d x %d ch %d: output_u8 %d, float path %d\n", first + b, y, x / 3,
                            x % 3, got, want);
            }
    }
    return bad;
}

/* The float model and its wrapping as sessions; runs `batches` (first, count) pairs. */
static long compare_model(const char *name, const int (*batches)[2], int n_batches) {
    size_t len = 0, wlen = 0;
    void *model = read_file(name, &len), *wrapped = NULL;
    if (!model) return fprintf(stderr, "  %s missing\n", name), -1;
    ls_err e = {0};
    if (onnx_wrap_unet_u8(model, len, &wrapped, &wlen, &e)) return fprintf(stderr, "  wrap: %s\n", e.msg), -1;
    OrtSession *f = fx_session(model, len), *w = fx_session(wrapped, wlen);
    long bad = f && w ? 0 : -1;
    for (int i = 0; i < n_batches && bad == 0; i++) bad = mismatches(f, w, batches[i][0], batches[i][1]);
    const OrtApi *api = ort_runtime_api(fx_rt);
    if (f) api->ReleaseSession(f);
    if (w) api->ReleaseSession(w);
    free(model), free(wrapped);
    return bad;
}

/* Tolerance: none. The wrapper must reproduce prepare.c's and paste.c's arithmetic exactly. */
TEST(wrapped_demo_unet_equals_float_path_byte_for_byte) {
    CHECK(inputs_ready, "inputs");
    static const int all[1][2] = {{0, MAX_B}}; /* real x2, zeros, 255s, random, real again */
    long bad = compare_model("models/demo_unet.onnx", all, 1);
    CHECK(bad == 0, "%ld bytes differ (-1: setup failed)", bad);
}

TEST(wrapped_unet328_equals_float_path_byte_for_byte) {
    CHECK(inputs_ready, "inputs");
    static const int batches[3][2] = {{0, 2}, {2, 2}, {4, 1}}; /* real; zeros + 255s; random */
    long bad = compare_model("models/unet328.onnx", batches, 3);
    CHECK(bad == 0, "%ld bytes differ (-1: setup failed)", bad);
}

TEST(wrapped_unet328_b1_fixed_batch_equals_float_path_byte_for_byte) {
    CHECK(inputs_ready, "inputs");
    static const int batches[2][2] = {{1, 1}, {4, 1}}; /* real; random */
    long bad = compare_model("models/unet328_b1.onnx", batches, 2);
    CHECK(bad == 0, "%ld bytes differ (-1: setup failed)", bad);
}

/* Name, element type and dims of a session's input or output i; dims[0] is -1 when symbolic. */
static int io_info(OrtSession *s, int output, size_t i, char *name, size_t cap, int *type, int64_t dims[4],
                   size_t *rank) {
    const OrtApi *api = ort_runtime_api(fx_rt);
    OrtAllocator *al = NULL;
    char *n = NULL;
    OrtTypeInfo *ti = NULL;
    const OrtTensorTypeAndShapeInfo *tsi = NULL;
    ONNXTensorElementDataType t = 0;
    OrtStatus *st = api->GetAllocatorWithDefaultOptions(&al);
    if (!st) st = output ? api->SessionGetOutputName(s, i, al, &n) : api->SessionGetInputName(s, i, al, &n);
    if (!st) st = output ? api->SessionGetOutputTypeInfo(s, i, &ti) : api->SessionGetInputTypeInfo(s, i, &ti);
    if (!st) st = api->CastTypeInfoToTensorInfo(ti, &tsi);
    if (!st) st = api->GetTensorElementType(tsi, &t);
    if (!st) st = api->GetDimensionsCount(tsi, rank);
    if (!st && *rank == 4) st = api->GetDimensions(tsi, dims, 4);
    if (n) snprintf(name, cap, "%s", n), fx_ok(api->AllocatorFree(al, n));
    if (ti) api->ReleaseTypeInfo(ti);
    *type = (int)t;
    if (st) api->ReleaseStatus(st);
    return st ? -1 : 0;
}

/* crop_u8 uint8 [B,328,328,3], audio float [B,32,16,16] -> output_u8 uint8 [B,320,320,3], with B
 * as in the original: symbolic for unet328.onnx, 1 for unet328_b1.onnx. */
TEST(wrapped_model_has_uint8_io_and_keeps_the_batch_dimension) {
    static const struct { const char *file; int64_t batch; } cases[2] = {{"models/unet328.onnx", -1},
                                                                        {"models/unet328_b1.onnx", 1}};
    for (int k = 0; k < 2; k++) {
        size_t len = 0, wlen = 0;
        void *model = read_file(cases[k].file, &len), *wrapped = NULL;
        CHECK(model, "%s present", cases[k].file);
        void *copy = malloc(len);
        memcpy(copy, model, len);
        ls_err e = {0};
        CHECK(onnx_wrap_unet_u8(model, len, &wrapped, &wlen, &e) == 0, "wraps: %s", e.msg);
        CHECK(memcmp(copy, model, len) == 0, "the caller's bytes are not modified");
        free(copy), free(model);
        OrtSession *s = fx_session(wrapped, wlen);
        free(wrapped);
        CHECK(s, "ORT accepts the wrapped model");
        static const struct { int output; size_t i; const char *name; int type; int64_t dims[4]; } want[3] = {
            {0, 0, "crop_u8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, {0, 328, 328, 3}},
            {0, 1, "audio", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, {0, 32, 16, 16}},
            {1, 0, "output_u8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, {0, 320, 320, 3}},
        };
        int ok = 1;
        for (int j = 0; j < 3 && ok; j++) {
            char name[64] = "";
            int type = 0;
            int64_t dims[4] = {0};
            size_t rank = 0;
            ok = io_info(s, want[j].output, want[j].i, name, sizeof name, &type, dims, &rank) == 0 &&
                 strcmp(name, want[j].name) == 0 && type == want[j].type && rank == 4 && dims[0] == cases[k].batch &&
                 memcmp(dims + 1, want[j].dims + 1, 3 * sizeof *dims) == 0;
            if (!ok)
                fprintf(stderr, "  %s %s %zu: '%s' type %d rank %zu [%lld,%lld,%lld,%lld]\n", cases[k].file,
                        want[j].output ? "output" : "input", want[j].i, name, type, rank, (long long)dims[0],
                        (long long)dims[1], (long long)dims[2], (long long)dims[3]);
        }
        size_t n_in = 0, n_out = 0;
        int counted = fx_ok(ort_runtime_api(fx_rt)->SessionGetInputCount(s, &n_in)) == 0 &&
                      fx_ok(ort_runtime_api(fx_rt)->SessionGetOutputCount(s, &n_out)) == 0;
        ort_runtime_api(fx_rt)->ReleaseSession(s);
        CHECK(ok, "%s: inputs/outputs as specified (above)", cases[k].file);
        CHECK(counted && n_in == 2 && n_out == 1, "%s: %zu inputs, %zu outputs", cases[k].file, n_in, n_out);
    }
}

/* to_u8 (paste.c) per pixel value p = byte/255 * scale: NaN and negatives -> 0, >= 255 -> 255. The
 * tiny model multiplies the image by the audio's first value, so scale NaN gives NaN everywhere,
 * +inf gives NaN (0 * inf) on black pixels and +inf elsewhere, -inf and -1 give -inf/negatives,
 * 1e30 gives huge values; scale 0.7 gives fractions, which must truncate (checked by the float path). */
TEST(nan_infinite_and_out_of_range_outputs_map_as_to_u8) {
    CHECK(inputs_ready, "inputs");
    const float scales[MAX_B] = {NAN, INFINITY, -INFINITY, 1e30f, -1.0f, 0.7f};
    for (int b = 0; b < MAX_B; b++) {
        memcpy(crops + b * CROP, crops + 4 * CROP, CROP); /* random bytes ... */
        for (size_t i = 0; i < CROP; i += 7) crops[b * CROP + i] = 0; /* ... with black pixels */
        audio[(size_t)b * AUDIO] = scales[b];
    }
    size_t len = 0, wlen = 0;
    void *model = fx_tiny_model(&(tiny_opts){0}, &len), *wrapped = NULL;
    ls_err e = {0};
    CHECK(onnx_wrap_unet_u8(model, len, &wrapped, &wlen, &e) == 0, "wraps: %s", e.msg);
    OrtSession *f = fx_session(model, len), *w = fx_session(wrapped, wlen);
    free(model);
    CHECK(f && w, "sessions");
    static uint8_t out[MAX_B * OUT_U8];
    int run = fx_run(w, 1, MAX_B, crops, audio, out);
    long bad = run ? -1 : mismatches(f, w, 0, MAX_B);
    ort_runtime_api(fx_rt)->ReleaseSession(f), ort_runtime_api(fx_rt)->ReleaseSession(w), free(wrapped);
    CHECK(run == 0, "wrapped model runs");
    CHECK(bad == 0, "%ld bytes differ from the float path", bad);
    for (int b = 0; b < 5; b++) /* the spec's values, independently of paste.c */
        for (int y = 0; y < PREP_SIZE; y++)
            for (int x = 0; x < PREP_SIZE * 3; x++) {
                uint8_t px = crops[b * CROP + ((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3 + x];
                int want = b == 1 ? (px ? 255 : 0) : b == 3 ? (px ? 255 : 0) : 0;
                int got = out[(size_t)b * OUT_U8 + (size_t)y * PREP_SIZE * 3 + x];
                CHECK(got == want, "scale %g, byte %d at y %d x %d: got %d, want %d", scales[b], px, y, x / 3, got,
                      want);
            }
}

/* Expects onnx_wrap_unet_u8 to fail with `code` and a message containing `needle`. */
static int fails_with(const void *bytes, size_t len, ls_code code, const char *needle, const char *what) {
    void *out = (void *)1;
    size_t out_len = 1;
    ls_err e = {0};
    int rc = onnx_wrap_unet_u8(bytes, len, &out, &out_len, &e);
    int ok = rc == -1 && e.code == code && strstr(e.msg, needle) && out == NULL && out_len == 0;
    if (!ok)
        fprintf(stderr, "  %s: rc %d code %s (want %s), message '%s' (want '%s')\n", what, rc, ls_code_name(e.code),
                ls_code_name(code), e.msg, needle);
    return ok;
}

/* A ModelProto of `levels` subgraphs nested graph -> node -> attribute -> graph ..., written
 * backwards from the innermost empty graph (tags: ModelProto.graph 7, GraphProto.node 1,
 * NodeProto.attribute 5, AttributeProto.g 6; all length-delimited). */
static uint8_t *deep_model(int levels, size_t *len) {
    size_t cap = (size_t)levels * 16 + 16, pos = cap;
    uint8_t *buf = malloc(cap);
    static const uint8_t tags[3] = {6 << 3 | 2, 5 << 3 | 2, 1 << 3 | 2};
    for (int i = 0; i <= 3 * levels; i++) {
        size_t n = cap - pos;
        uint8_t v[10];
        int k = 0;
        do v[k++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); while ((n >>= 7));
        while (k) buf[--pos] = v[--k];
        buf[--pos] = i == 3 * levels ? (7 << 3 | 2) : tags[i % 3];
    }
    memmove(buf, buf + pos, cap - pos);
    *len = cap - pos;
    return buf;
}

TEST(garbage_bytes_are_format_errors) {
    static const char text[] = "this is not an ONNX model, just text";
    CHECK(fails_with(text, 0, LS_EFORMAT, "no bytes", "empty"), "empty input");
    CHECK(fails_with(NULL, 10, LS_EFORMAT, "no bytes", "NULL"), "NULL input");
    CHECK(fails_with(text, sizeof text, LS_EFORMAT, "not an ONNX model", "text"), "text");
    uint8_t noise[4096];
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)(next() >> 24);
    CHECK(fails_with(noise, sizeof noise, LS_EFORMAT, "not an ONNX model", "random bytes"), "random bytes");
    size_t len = 0;
    void *model = read_file("models/demo_unet.onnx", &len);
    CHECK(model, "demo_unet present");
    int trunc = fails_with(model, len / 2, LS_EFORMAT, "not an ONNX model", "truncated demo_unet");
    free(model);
    CHECK(trunc, "the first half of a model");
    uint8_t *deep = deep_model(2000, &len);
    int deep_ok = fails_with(deep, len, LS_EFORMAT, "nested deeper", "2000 nested subgraphs");
    free(deep);
    CHECK(deep_ok, "absurd nesting is refused before protobuf-c recurses into it");
    ls_err e = {0};
    CHECK(onnx_wrap_unet_u8(text, sizeof text, NULL, &len, &e) == -1 && e.code == LS_EINVAL, "NULL out: EINVAL");
}

TEST(models_without_the_unet_tensors_are_refused) {
    size_t len = 0;
    void *m = fx_tiny_model(&(tiny_opts){.in_name = "image"}, &len);
    int ok = fails_with(m, len, LS_EMODEL, "no input named 'input'", "input renamed");
    free(m);
    CHECK(ok, "a model whose image input is not called 'input'");
    m = fx_tiny_model(&(tiny_opts){.out_name = "pred"}, &len);
    ok = fails_with(m, len, LS_EMODEL, "no output named 'output'", "output renamed");
    free(m);
    CHECK(ok, "a model whose output is not called 'output'");
    m = read_file("models/bad_shape_unet.onnx", &len);
    CHECK(m, "bad_shape_unet present");
    ok = fails_with(m, len, LS_EMODEL, "'audio' is float32 [batch,32,8,8], expected float32 [B,32,16,16]",
                    "bad_shape_unet");
    free(m);
    CHECK(ok, "bad_shape_unet.onnx: audio [B,32,8,8]");
    m = read_file("models/ave_encoder.onnx", &len);
    CHECK(m, "ave_encoder present");
    ok = fails_with(m, len, LS_EMODEL, "no input named 'input'", "audio encoder");
    free(m);
    CHECK(ok, "the audio encoder is not a UNet");
}

TEST(external_data_old_opsets_and_reserved_names_are_refused) {
    size_t len = 0;
    void *m = fx_tiny_model(&(tiny_opts){.external = 1}, &len);
    int ok = fails_with(m, len, LS_EMODEL, "external data is not supported", "external data");
    free(m);
    CHECK(ok, "external data");
    m = fx_tiny_model(&(tiny_opts){.opset = 10}, &len);
    ok = fails_with(m, len, LS_EMODEL, "opset 10; wrapping needs opset 11", "opset 10");
    free(m);
    CHECK(ok, "opset 10 (Clip takes min/max as attributes there)");
    m = fx_tiny_model(&(tiny_opts){.node_name = "lipsync_u8/mul"}, &len);
    ok = fails_with(m, len, LS_EMODEL, "'lipsync_u8/mul', reserved", "reserved node name");
    free(m);
    CHECK(ok, "a node name with the wrapper's prefix");
    m = read_file("models/demo_unet.onnx", &len);
    void *once = NULL;
    size_t once_len = 0;
    ls_err e = {0};
    CHECK(m && onnx_wrap_unet_u8(m, len, &once, &once_len, &e) == 0, "first wrap: %s", e.msg);
    free(m);
    ok = fails_with(once, once_len, LS_EMODEL, "already wrapped", "wrapped twice");
    free(once);
    CHECK(ok, "wrapping a wrapped model");
}

int main(void) {
    ls_err e = {0};
    fx_rt = ort_runtime_create(NULL, &e);
    if (!fx_rt) {
        fprintf(stderr, "ONNX Runtime: %s\n", e.msg);
        return 1;
    }
    inputs_ready = fill_inputs() == 0;
    RUN(wrapped_demo_unet_equals_float_path_byte_for_byte);
    RUN(wrapped_unet328_equals_float_path_byte_for_byte);
    RUN(wrapped_unet328_b1_fixed_batch_equals_float_path_byte_for_byte);
    RUN(wrapped_model_has_uint8_io_and_keeps_the_batch_dimension);
    RUN(nan_infinite_and_out_of_range_outputs_map_as_to_u8);
    RUN(garbage_bytes_are_format_errors);
    RUN(models_without_the_unet_tensors_are_refused);
    RUN(external_data_old_opsets_and_reserved_names_are_refused);
    ort_runtime_destroy(fx_rt);
    return check_summary();
}
