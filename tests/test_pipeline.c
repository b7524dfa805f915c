/* test_pipeline.c - the pipeline end to end in-process: the demo models visibly open the mouth
 * for speech and keep it closed in silence, the full-size SyncTalk_2D UNet runs through it, and
 * the per-frame hot path (features window, prep, UNet run, paste, JPEG) performs no heap
 * allocation in our code once warm (counted with -Wl,--wrap=malloc,calloc,realloc). */
#include "check.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "audio/mel.h"
#include "avatar/avatar.h"
#include "host_device.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"
#include "pipeline/clip.h"
#include "pipeline/render.h"

/* ---- allocation counting: every malloc/calloc/realloc from our code goes through these ---- */
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
static size_t alloc_calls;
void *__wrap_malloc(size_t n) { alloc_calls++; return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { alloc_calls++; return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { alloc_calls++; return __real_realloc(p, n); }

static char build_dir[1024];

static const char *build_path(const char *rel) {
    static char path[2048];
    snprintf(path, sizeof path, "%s/%s", build_dir, rel);
    return path;
}

/* A 3-frame 320x240 avatar with a textured face box, held in memory (no package on disk). */
static avatar *small_avatar(void) {
    static uint8_t pixels[3 * 240 * 320 * 3];
    static ls_box boxes[3];
    static avatar av;
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int f = 0; f < 3; f++) boxes[f] = (ls_box){60 + f * 4, 40, 220 + f * 4, 200};
    av = (avatar){.width = 320, .height = 240, .fps = 25, .frame_count = 3, .frames = pixels,
                  .boxes = boxes};
    return &av;
}

typedef struct {
    double mouth_diff, outside_diff;  /* mean |rendered - avatar frame| inside/outside the mouth */
    size_t frames;
    const avatar *av;
} diff_sink;

/* The demo mouth: an ellipse centred at (160, 120) of the 320x320 UNet crop, semi-axes (64, 34);
 * mapped back through the 328 crop to the face box. */
static int in_mouth(ls_box b, int x, int y) {
    double sx = (double)box_width(b) / 328.0, sy = (double)box_height(b) / 328.0;
    double cx = b.x1 + (160 + 4) * sx, cy = b.y1 + (120 + 4) * sy;
    double dx = (x - cx) / (64 * sx), dy = (y - cy) / (34 * sy);
    return dx * dx + dy * dy <= 1.0;
}

static int measure_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    (void)err;
    diff_sink *s = ctx;
    const uint8_t *orig = avatar_frame(s->av, f->avatar_frame);
    double in_sum = 0, out_sum = 0;
    size_t in_n = 0, out_n = 0;
    for (int y = f->box.y1; y < f->box.y2; y++)
        for (int x = f->box.x1; x < f->box.x2; x++)
            for (int c = 0; c < 3; c++) {
                size_t i = (size_t)y * f->stride + (size_t)x * 3 + (size_t)c;
                double d = abs((int)f->bgr[i] - (int)orig[i]);
                if (in_mouth(f->box, x, y)) { in_sum += d; in_n++; }
                else { out_sum += d; out_n++; }
            }
    s->mouth_diff += in_sum / (double)in_n;
    s->outside_diff += out_sum / (double)out_n;
    s->frames++;
    return 0;
}

typedef struct {
    ort_runtime *rt;
    ort_model *enc, *unet;
    pipe_worker *w;
    OrtMemoryInfo *device_mem; /* models on the device-tensor path (host_device.h), or NULL */
} fixture;

enum { PIPELINED = 1, UINT8_IO = 2, DEVICE_TENSORS = 4 };

/* A worker bound to the two models; flags: PIPELINED worker, UNet with UINT8_IO, both models on
 * the DEVICE_TENSORS path (as on a GPU, host memory standing in). */
static int fixture_open_with(fixture *fx, const char *enc, const char *unet, int batch, int flags) {
    ls_err err = {0};
    memset(fx, 0, sizeof *fx);
    ort_model_opts mo = {.intra_threads = 1}, mu = {.intra_threads = 1, .uint8_io = !!(flags & UINT8_IO)};
    pipe_worker_cfg wc = {.max_batch = batch, .max_frame_w = 320, .max_frame_h = 240,
                          .pipeline = !!(flags & PIPELINED)};
    int ok = (fx->rt = ort_runtime_create(NULL, &err)) &&
             (fx->enc = ort_model_load(fx->rt, build_path(enc), ORT_ROLE_ENCODER, &mo, &err)) &&
             (fx->unet = ort_model_load(fx->rt, build_path(unet), ORT_ROLE_UNET, &mu, &err)) &&
             (!(flags & DEVICE_TENSORS) || (fx->device_mem = host_device_memory(fx->rt))) &&
             (fx->w = pipe_worker_create(&wc, &err));
    if (ok && fx->device_mem) host_device_use(fx->enc, fx->device_mem), host_device_use(fx->unet, fx->device_mem);
    if (!ok || pipe_worker_bind(fx->w, fx->enc, fx->unet, &err) != 0) {
        fprintf(stderr, "  fixture: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int fixture_open(fixture *fx, const char *enc, const char *unet, int batch) {
    return fixture_open_with(fx, enc, unet, batch, 0);
}

static void fixture_close(fixture *fx) {
    pipe_worker_destroy(fx->w);
    ort_model_destroy(fx->unet);
    ort_model_destroy(fx->enc);
    if (fx->device_mem) ort_runtime_api(fx->rt)->ReleaseMemoryInfo(fx->device_mem);
    ort_runtime_destroy(fx->rt);
}

/* Renders the clip through the fixture and measures how the frames differ from the avatar. */
static int render_clip(fixture *fx, const avatar *av, const float *pcm, size_t n, diff_sink *out) {
    ls_err err = {0};
    static float mel[4096 * MEL_BINS], feats[1024 * 512];
    size_t frames;
    if (pipe_clip_features(fx->w, pcm, n, mel, feats, &frames, &err) != 0) {
        fprintf(stderr, "  features: %s\n", err.msg);
        return -1;
    }
    *out = (diff_sink){.av = av};
    pipe_render_req req = {.av = av, .feats = feats, .n_frames = frames, .count = frames};
    pipe_timings t = {0};
    if (pipe_render(fx->w, &req, measure_frame, out, &t, &err) != 0) {
        fprintf(stderr, "  render: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static float *golden_speech(size_t *n) {
    FILE *f = fopen(check_golden("speech_640ms_mel.json"), "rb");
    if (!f) return NULL;
    static char text[400000];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    cJSON *root = cJSON_Parse(text), *audio = cJSON_GetObjectItem(root, "audio");
    int count = cJSON_GetArraySize(audio);
    static float pcm[20000];
    for (int i = 0; i < count && i < 20000; i++) pcm[i] = (float)cJSON_GetArrayItem(audio, i)->valuedouble;
    cJSON_Delete(root);
    *n = (size_t)count;
    return pcm;
}

TEST(demo_mouth_opens_for_speech_and_stays_closed_in_silence) {
    fixture fx;
    CHECK(fixture_open(&fx, "models/demo_encoder.onnx", "models/demo_unet.onnx", 4) == 0, "open");
    const avatar *av = small_avatar();
    size_t n;
    float *speech = golden_speech(&n);
    CHECK(speech && n == 10240, "golden speech (640 ms)");
    static float silence[10240];
    diff_sink loud, quiet;
    CHECK(render_clip(&fx, av, speech, n, &loud) == 0, "speech renders");
    CHECK(render_clip(&fx, av, silence, n, &quiet) == 0, "silence renders");
    fixture_close(&fx);
    /* 10240 samples: 52 mel rows, int((52 - 16) / 80 * 25) + 2 = 13 frames. */
    CHECK(loud.frames == 13 && quiet.frames == 13, "640 ms gives 13 frames (got %zu)", loud.frames);
    /* Silence: the demo UNet returns its input, so the only change is the cubic resize round trip
     * (box -> 328 -> box) on random texture: a few levels on average, the same inside and out. */
    double quiet_mouth = quiet.mouth_diff / 13, loud_mouth = loud.mouth_diff / 13;
    double loud_out = loud.outside_diff / 13, quiet_out = quiet.outside_diff / 13;
    CHECK(fabs(quiet_mouth - quiet_out) < 3.0, "silence: mouth %.2f vs rest %.2f", quiet_mouth, quiet_out);
    /* Speech: the mouth region changes far more than resampling alone explains (threshold: 10
     * grey levels on average above silence), and the rest of the face box no more than in silence. */
    CHECK(loud_mouth > quiet_mouth + 10.0, "speech mouth %.2f vs silence %.2f", loud_mouth, quiet_mouth);
    CHECK(fabs(loud_out - quiet_out) < 1.0, "outside the mouth: speech %.2f vs silence %.2f", loud_out, quiet_out);
}

TEST(full_size_unet_runs_through_the_pipeline) {
    fixture fx;
    CHECK(fixture_open(&fx, "models/ave_encoder.onnx", "models/unet328.onnx", 2) == 0, "open");
    const avatar *av = small_avatar();
    static float pcm[3200 * 2];  /* 0.4 s: 33 mel rows, int(17 / 80 * 25) + 2 = 7 frames */
    for (size_t i = 0; i < sizeof pcm / sizeof *pcm; i++) pcm[i] = 0.3f * sinf((float)i * 0.07f);
    diff_sink s;
    int rc = render_clip(&fx, av, pcm, sizeof pcm / sizeof *pcm, &s);
    int finite = 1;
    for (size_t i = 0; i < 2 * ORT_UNET_OUT_ELEMS; i++) finite &= isfinite(fx.w->unet_output[i]) != 0;
    fixture_close(&fx);
    CHECK(rc == 0, "render");
    CHECK(s.frames == 7, "0.4 s gives 7 frames (got %zu)", s.frames);
    CHECK(finite, "UNet outputs are finite");
    CHECK(s.mouth_diff / 7 > 5.0, "a random UNet redraws the face (mean diff %.2f)", s.mouth_diff / 7);
}

static int encode_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    pipe_worker *w = ctx;
    const uint8_t *jpg;
    size_t len;
    return jpeg_encode_bgr(w->jpeg, f->bgr, f->width, f->height, f->stride, &jpg, &len, err);
}

/* Keeps a copy of every frame, in the order the sink saw them; fails at frame fail_at if set. */
#define KEEP_MAX 40
typedef struct {
    uint8_t pix[KEEP_MAX][240 * 320 * 3];
    size_t index[KEEP_MAX];
    int avatar_frame[KEEP_MAX];
    size_t n, fail_at;
} keep_sink;

static int keep_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    keep_sink *k = ctx;
    if (k->fail_at && k->n == k->fail_at) return ls_fail(err, LS_EIO, "sink refuses frame %zu", f->index);
    if (k->n >= KEEP_MAX || f->width != 320 || f->height != 240) return ls_fail(err, LS_EINVAL, "unexpected frame");
    for (int y = 0; y < 240; y++) memcpy(k->pix[k->n] + (size_t)y * 960, f->bgr + (size_t)y * f->stride, 960);
    k->index[k->n] = f->index;
    k->avatar_frame[k->n++] = f->avatar_frame;
    return 0;
}

/* Renders the clip's first `count` frames (0: all of them) into k. */
static int render_keep_n(fixture *fx, const float *pcm, size_t n, size_t count, keep_sink *k, ls_err *err) {
    static float mel[4096 * MEL_BINS], feats[1024 * 512];
    size_t frames;
    if (pipe_clip_features(fx->w, pcm, n, mel, feats, &frames, err) != 0) return -1;
    pipe_render_req req = {.av = small_avatar(), .feats = feats, .n_frames = frames,
                           .count = count && count < frames ? count : frames, .start_frame = 1};
    pipe_timings t = {0};
    k->n = 0;
    return pipe_render(fx->w, &req, keep_frame, k, &t, err);
}

static int render_keep(fixture *fx, const float *pcm, size_t n, keep_sink *k, ls_err *err) {
    return render_keep_n(fx, pcm, n, 0, k, err);
}

/* A pipelined worker (UNet on the runner thread, two slot sets) gives the serial worker's frames,
 * byte for byte and in order, for float and uint8 UNets, with host tensors and on the device-tensor
 * path (two bindings, each with its device copies); a sink error stops it cleanly and the worker
 * renders again afterwards. */
TEST(pipelined_render_equals_serial) {
    size_t n;
    float *speech = golden_speech(&n); /* 13 frames: batches of 4, 4, 4, 1 */
    CHECK(speech && n == 10240, "golden speech");
    static keep_sink serial, piped;
    for (int v = 0; v < 4; v++) {
        int u8 = v & 1, dev = v >> 1;
        fixture a, b;
        ls_err err = {0};
        int flags = PIPELINED | (u8 ? UINT8_IO : 0) | (dev ? DEVICE_TENSORS : 0);
        CHECK(fixture_open_with(&a, "models/demo_encoder.onnx", "models/demo_unet.onnx", 4, u8 ? UINT8_IO : 0) == 0,
              "serial");
        CHECK(fixture_open_with(&b, "models/demo_encoder.onnx", "models/demo_unet.onnx", 4, flags) == 0, "pipelined");
        CHECK(b.w->runner && !a.w->runner, "only the pipelined worker has a runner");
        int rs = render_keep(&a, speech, n, &serial, &err);
        host_device_bytes = 0;
        int rp = render_keep(&b, speech, n, &piped, &err);
        CHECK(rs == 0 && rp == 0, "renders: %s", err.msg);
        CHECK((host_device_bytes > 0) == dev, "device tensors %d: %zu bytes copied", dev, host_device_bytes);
        CHECK(serial.n == 13 && piped.n == 13, "13 frames each (%zu, %zu)", serial.n, piped.n);
        size_t differ = 0;
        for (size_t i = 0; i < serial.n; i++)
            differ += piped.index[i] != i || piped.avatar_frame[i] != serial.avatar_frame[i] ||
                      memcmp(piped.pix[i], serial.pix[i], sizeof piped.pix[i]) != 0;
        CHECK(differ == 0, "uint8 %d, device tensors %d: %zu frames differ from the serial render", u8, dev, differ);
        /* The frames differ from one another (the test would not see a stale slot otherwise). */
        CHECK(memcmp(serial.pix[0], serial.pix[5], sizeof serial.pix[0]) != 0, "frames differ");
        piped.fail_at = 6; /* in the second batch, while the third is running */
        CHECK(render_keep(&b, speech, n, &piped, &err) == -1 && err.code == LS_EIO, "sink error: %s", err.msg);
        piped.fail_at = 0;
        CHECK(render_keep(&b, speech, n, &piped, &err) == 0 && piped.n == 13, "renders after an error");
        CHECK(memcmp(piped.pix[12], serial.pix[12], sizeof piped.pix[0]) == 0, "same last frame after the error");
        /* A single batch (3 frames) also runs on the runner, and equals the serial render's frames. */
        CHECK(render_keep_n(&b, speech, n, 3, &piped, &err) == 0 && piped.n == 3, "one batch: %s", err.msg);
        for (size_t i = 0; i < 3; i++)
            CHECK(memcmp(piped.pix[i], serial.pix[i], sizeof piped.pix[0]) == 0, "one batch: frame %zu differs", i);
        fixture_close(&a);
        fixture_close(&b);
    }
}

static int cancel_at_5(void *ctx, const pipe_frame *f, ls_err *err) {
    (void)err;
    if (f->index == 5) atomic_store((atomic_int *)ctx, 1);
    return 0;
}

/* While a batch runs on the runner: a cancel, and a frame that cannot be prepared (a box outside
 * its frame, in the second batch), both end the render with their error once the run is over,
 * and the worker renders again afterwards. */
TEST(pipelined_render_stops_cleanly_while_a_batch_runs) {
    size_t n;
    float *speech = golden_speech(&n); /* 13 frames */
    CHECK(speech && n == 10240, "golden speech");
    fixture fx;
    ls_err err = {0};
    CHECK(fixture_open_with(&fx, "models/demo_encoder.onnx", "models/demo_unet.onnx", 4, PIPELINED) == 0, "open");
    static float mel[4096 * MEL_BINS], feats[1024 * 512];
    size_t frames;
    CHECK(pipe_clip_features(fx.w, speech, n, mel, feats, &frames, &err) == 0, "features: %s", err.msg);
    /* 8 avatar frames: batch 0 shows 0-3, batch 1 shows 4-7; frame 6's box leaves the image. */
    const avatar *base = small_avatar();
    static ls_box boxes[8];
    for (int i = 0; i < 8; i++) boxes[i] = base->boxes[i % 3];
    boxes[6] = (ls_box){200, 100, 400, 300};
    static uint8_t pixels[8 * 240 * 320 * 3];
    for (int i = 0; i < 8; i++) memcpy(pixels + (size_t)i * 240 * 960, avatar_frame(base, i % 3), 240 * 960);
    avatar bad = *base;
    bad.frames = pixels, bad.boxes = boxes, bad.frame_count = 8;
    pipe_timings t = {0};
    pipe_render_req req = {.av = &bad, .feats = feats, .n_frames = frames, .count = frames};
    int rc = pipe_render(fx.w, &req, cancel_at_5, &(atomic_int){0}, &t, &err);
    CHECK(rc == -1 && err.code == LS_EINVAL && strstr(err.msg, "frame 6"), "bad box in batch 1: %s", err.msg);
    atomic_int cancel = 0;
    req.av = small_avatar();
    req.cancel = &cancel;
    rc = pipe_render(fx.w, &req, cancel_at_5, &cancel, &t, &err);
    CHECK(rc == -1 && err.code == LS_ECANCELLED && strstr(err.msg, "frame 12"), "cancelled during batch 2: %s", err.msg);
    static keep_sink k;
    CHECK(render_keep(&fx, speech, n, &k, &err) == 0 && k.n == 13, "renders afterwards: %s", err.msg);
    fixture_close(&fx);
}

static void warm_render_allocates_nothing(int flags) {
    fixture fx;
    size_t at_start = alloc_calls;
    CHECK(fixture_open_with(&fx, "models/demo_encoder.onnx", "models/demo_unet.onnx", 4, flags) == 0, "open");
    /* The counter works: creating the worker allocates through it. */
    CHECK(alloc_calls > at_start, "no allocation counted while creating the worker");
    const avatar *av = small_avatar();
    static float pcm[16000], mel[81 * MEL_BINS], feats[64 * 512];
    for (size_t i = 0; i < 16000; i++) pcm[i] = 0.4f * sinf((float)i * 0.05f);
    ls_err err = {0};
    size_t frames;
    pipe_timings t = {0};
    int rc = 0;
    size_t before = 0;
    for (int round = 0; round < 4 && rc == 0; round++) {
        if (round == 1) before = alloc_calls;  /* round 0 warms up */
        rc |= pipe_clip_features(fx.w, pcm, 16000, mel, feats, &frames, &err);
        pipe_render_req req = {.av = av, .feats = feats, .n_frames = frames, .count = frames,
                               .start_frame = round};
        rc |= pipe_render(fx.w, &req, encode_frame, fx.w, &t, &err);
    }
    size_t during = alloc_calls - before;
    fixture_close(&fx);
    CHECK(rc == 0, "render: %s", err.msg);
    CHECK(during == 0, "flags %d: %zu allocations in 3 warm clips of %zu frames", flags, during, frames);
}

TEST(warm_render_allocates_nothing_in_our_code) {
    warm_render_allocates_nothing(0);
    warm_render_allocates_nothing(PIPELINED); /* 1 s of audio: 26 frames, batches of 4 overlapped */
    warm_render_allocates_nothing(PIPELINED | UINT8_IO | DEVICE_TENSORS); /* as on a GPU */
}

int main(void) {
    const char *b = getenv("LS_BUILD_DIR");
    snprintf(build_dir, sizeof build_dir, "%s", b ? b : "../build");
    RUN(demo_mouth_opens_for_speech_and_stays_closed_in_silence);
    RUN(full_size_unet_runs_through_the_pipeline);
    RUN(warm_render_allocates_nothing_in_our_code);
    RUN(pipelined_render_equals_serial);
    RUN(pipelined_render_stops_cleanly_while_a_batch_runs);
    return check_summary();
}
