/* test_pipe_fastpath.c - the fast paths around the UNet give exactly what the reference paths give,
 * on the demo avatar's frames (build/avatars/demo, 1280x720) with the demo models:
 *  - prepared-crop cache (avatar_cache.h): the inputs and the rendered frames are bit-identical to
 *    those of prep_frame on every call;
 *  - spliced JPEG (encode.h): each finished frame's JPEG is byte-identical to, and decodes to the
 *    same pixels as, a full encode of that frame with the same settings; other qualities fall back
 *    to a full encode;
 *  - restoring only the region the JPEG sink reads (render.h's req.region): the JPEG equals a full
 *    encode of the whole composited frame, and the rest of the frame buffer was not touched. */
#include "check.h"

#include <stdint.h>
#include <string.h>
#include <turbojpeg.h>

#include "audio/mel.h"
#include "avatar/avatar.h"
#include "image/jpeg_splice.h"
#include "image/prepare.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"
#include "pipeline/avatar_cache.h"
#include "pipeline/clip.h"
#include "pipeline/encode.h"
#include "pipeline/render.h"

static char build_dir[1024];
static avatar *demo;

static const char *build_path(const char *rel) {
    static char path[2048];
    snprintf(path, sizeof path, "%s/%s", build_dir, rel);
    return path;
}

typedef struct {
    ort_runtime *rt;
    ort_model *enc, *unet;
    pipe_worker *w;
    float feats[64 * 512];
    size_t frames;
} fixture;

/* Demo models, batch 4, and the features of 1 s of a chirp-like tone (26 frames). */
static int fixture_open(fixture *fx) {
    ls_err err = {0};
    static float pcm[16000], mel[81 * MEL_BINS];
    for (size_t i = 0; i < 16000; i++) pcm[i] = 0.5f * sinf((float)i * (0.02f + (float)i * 2e-6f));
    ort_model_opts mo = {.intra_threads = 1};
    pipe_worker_cfg wc = {.max_batch = 4, .max_frame_w = demo->width, .max_frame_h = demo->height};
    if (!(fx->rt = ort_runtime_create(NULL, &err)) ||
        !(fx->enc = ort_model_load(fx->rt, build_path("models/demo_encoder.onnx"), ORT_ROLE_ENCODER, &mo, &err)) ||
        !(fx->unet = ort_model_load(fx->rt, build_path("models/demo_unet.onnx"), ORT_ROLE_UNET, &mo, &err)) ||
        !(fx->w = pipe_worker_create(&wc, &err)) || pipe_worker_bind(fx->w, fx->enc, fx->unet, &err) ||
        pipe_clip_features(fx->w, pcm, 16000, mel, fx->feats, &fx->frames, &err)) {
        fprintf(stderr, "  fixture: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void fixture_close(fixture *fx) {
    pipe_worker_destroy(fx->w);
    ort_model_destroy(fx->unet);
    ort_model_destroy(fx->enc);
    ort_runtime_destroy(fx->rt);
}

TEST(cached_inputs_equal_prep_frame_for_every_demo_frame) {
    ls_err err = {0};
    pipe_avcache *c = pipe_avcache_create(demo, &err);
    CHECK(c, "cache: %s", err.msg);
    CHECK(pipe_avcache_bytes(c) >= (size_t)demo->frame_count * PREP_CROP_BYTES, "memory counts the crops");
    static uint8_t crop_ref[PREP_CROP_BYTES], crop[PREP_CROP_BYTES];
    static float in_ref[PREP_INPUT_FLOATS], in[PREP_INPUT_FLOATS];
    resize_scratch rs;
    CHECK(resize_scratch_init(&rs, demo->width, demo->width, &err) == 0, "scratch");
    int bad_input = -1, bad_crop = -1, bad_border = -1;
    for (int i = 0; i < demo->frame_count; i++) {
        CHECK(prep_frame(avatar_frame(demo, i), demo->width, demo->height, (size_t)demo->width * 3,
                         demo->boxes[i], crop_ref, in_ref, &rs, &err) == 0, "prep: %s", err.msg);
        memset(crop, 0xA5, sizeof crop); /* the inside is not written; the border must be */
        pipe_avcache_prepare(c, i, crop, in);
        if (bad_input < 0 && memcmp(in, in_ref, sizeof in) != 0) bad_input = i;
        if (bad_crop < 0 && memcmp(pipe_avcache_crop(c, i), crop_ref, sizeof crop) != 0) bad_crop = i;
        for (int y = 0; y < PREP_CROP && bad_border < 0; y++)
            for (int x = 0; x < PREP_CROP * 3; x++) {
                int inside = y >= 4 && y < 324 && x >= 12 && x < 324 * 3;
                if (!inside && crop[y * PREP_CROP * 3 + x] != crop_ref[y * PREP_CROP * 3 + x]) bad_border = i;
            }
    }
    resize_scratch_free(&rs);
    pipe_avcache_free(c);
    CHECK(bad_input < 0, "frame %d: cached input differs from prep_frame's (bit-exact expected)", bad_input);
    CHECK(bad_crop < 0, "frame %d: cached crop differs from prep_frame's", bad_crop);
    CHECK(bad_border < 0, "frame %d: the crop border written for paste-back differs", bad_border);
}

/* Sink that keeps copies of the frames it is given. */
typedef struct {
    uint8_t *frames;
    size_t n, max;
} keep_sink;

static int keep_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    keep_sink *k = ctx;
    size_t bytes = (size_t)f->height * f->stride;
    if (k->n >= k->max) return ls_fail(err, LS_EINTERNAL, "too many frames");
    memcpy(k->frames + k->n++ * bytes, f->bgr, bytes);
    return 0;
}

TEST(cached_render_gives_the_same_frames_as_uncached) {
    static fixture fx;
    CHECK(fixture_open(&fx) == 0, "open");
    ls_err err = {0};
    pipe_avcache *c = pipe_avcache_create(demo, &err);
    size_t bytes = (size_t)demo->width * 3 * demo->height, n = 10;
    keep_sink ref = {malloc(n * bytes), 0, n}, got = {malloc(n * bytes), 0, n};
    /* Start near the clip's end so the walk turns (frames 245..249, 248..244). */
    pipe_render_req req = {.av = demo, .feats = fx.feats, .n_frames = fx.frames, .first = 3, .count = n,
                           .start_frame = 242};
    pipe_timings t = {0};
    int rc = !c || pipe_render(fx.w, &req, keep_frame, &ref, &t, &err);
    req.prepared = c;
    rc |= pipe_render(fx.w, &req, keep_frame, &got, &t, &err);
    int same = rc == 0 && ref.n == n && got.n == n && memcmp(ref.frames, got.frames, n * bytes) == 0;
    /* The frames really were redrawn: otherwise equality would prove nothing. */
    size_t changed = 0;
    for (size_t i = 0; rc == 0 && i < bytes; i++) changed += got.frames[i] != avatar_frame(demo, 245)[i];
    fixture_close(&fx);
    pipe_avcache_free(c);
    free(ref.frames), free(got.frames);
    CHECK(rc == 0, "render: %s", err.msg);
    CHECK(same, "cached and uncached renders differ");
    CHECK(changed > 1000, "the first frame differs from its avatar frame in %zu bytes only", changed);
}

TEST(a_cache_of_another_avatar_is_refused) {
    static fixture fx;
    CHECK(fixture_open(&fx) == 0, "open");
    ls_err err = {0};
    avatar other = *demo;
    other.frame_count = 2;
    pipe_avcache *c = pipe_avcache_create(&other, &err);
    pipe_render_req req = {.av = demo, .feats = fx.feats, .n_frames = fx.frames, .count = 1, .prepared = c};
    pipe_timings t = {0};
    keep_sink none = {0};
    int rc = pipe_render(fx.w, &req, keep_frame, &none, &t, &err);
    fixture_close(&fx);
    pipe_avcache_free(c);
    CHECK(c != NULL, "cache of the 2-frame avatar");
    CHECK(rc == -1 && err.code == LS_EINVAL && strstr(err.msg, "another avatar"), "got %d: %s", rc, err.msg);
}

/* Sink: the spliced JPEG against a full encode with the same settings, bytes and decoded pixels. */
typedef struct {
    pipe_jpeg_enc *enc;
    pipe_jpeg_set *set;
    int quality;
    jsplice_encoder *ref;
    uint8_t *ref_out, *pix_a, *pix_b;
    size_t cap, frames, same_bytes, same_pixels;
    tjhandle tj;
} splice_sink;

static int decode(tjhandle tj, const uint8_t *jpg, size_t len, uint8_t *pix, int w, int h) {
    return tjDecompress2(tj, jpg, (unsigned long)len, pix, w, 0, h, TJPF_BGR, TJFLAG_ACCURATEDCT);
}

static int splice_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    splice_sink *s = ctx;
    const uint8_t *jpg;
    size_t len, ref_len;
    if (pipe_jpeg_encode(s->enc, s->set, f, s->quality, &jpg, &len, err)) return -1;
    if (jsplice_encode_full(s->ref, f->bgr, f->width, f->height, (int)f->stride, s->quality,
                            JSPLICE_DEFAULT_RESTART_MCUS, s->ref_out, s->cap, &ref_len, err))
        return -1;
    s->frames++;
    s->same_bytes += len == ref_len && memcmp(jpg, s->ref_out, len) == 0;
    if (decode(s->tj, jpg, len, s->pix_a, f->width, f->height) ||
        decode(s->tj, s->ref_out, ref_len, s->pix_b, f->width, f->height))
        return ls_fail(err, LS_EINTERNAL, "decode: %s", tjGetErrorStr2(s->tj));
    s->same_pixels += memcmp(s->pix_a, s->pix_b, (size_t)f->width * f->height * 3) == 0;
    return 0;
}

/* Renders 8 frames from start_frame through splice_frame at `quality` with a set at 75. */
static int render_spliced(int quality, int64_t start, splice_sink *s, pipe_jpeg_stats *st, ls_err *err) {
    static fixture fx;
    if (fixture_open(&fx) != 0) return -1;
    size_t px = (size_t)demo->width * demo->height * 3;
    *s = (splice_sink){.quality = quality, .cap = jsplice_max_jpeg_size(demo->width, demo->height, 1),
                       .tj = tjInitDecompress()};
    s->set = pipe_jpeg_set_create(demo, 75, 0, 0, err);
    s->enc = pipe_jpeg_enc_create(demo->width, demo->height, err);
    s->ref = jsplice_encoder_create(demo->width, demo->height, err);
    s->ref_out = malloc(s->cap), s->pix_a = malloc(px), s->pix_b = malloc(px);
    size_t bytes_before = s->set ? pipe_jpeg_set_bytes(s->set) : 0;
    pipe_render_req req = {.av = demo, .feats = fx.feats, .n_frames = fx.frames, .count = 8, .start_frame = start};
    pipe_timings t = {0};
    int rc = !s->set || !s->enc || !s->ref ? -1 : pipe_render(fx.w, &req, splice_frame, s, &t, err);
    if (rc == 0) pipe_jpeg_enc_stats(s->enc, st);
    /* Lazily built backgrounds are counted: 8 frames, each at least a few KB of JPEG. */
    if (rc == 0 && pipe_jpeg_set_bytes(s->set) < bytes_before + 8 * 4096)
        rc = ls_fail(err, LS_EINTERNAL, "set memory grew by %zu bytes only", pipe_jpeg_set_bytes(s->set) - bytes_before);
    fixture_close(&fx);
    pipe_jpeg_set_free(s->set), pipe_jpeg_enc_free(s->enc), jsplice_encoder_free(s->ref);
    free(s->ref_out), free(s->pix_a), free(s->pix_b);
    tjDestroy(s->tj);
    return rc;
}

TEST(spliced_frames_equal_full_encodes_of_the_demo_frames) {
    ls_err err = {0};
    splice_sink s;
    pipe_jpeg_stats st = {0};
    /* Start frames 0 and 120, and one where the walk turns at the last frame. */
    int64_t starts[3] = {0, 120, 245};
    for (int i = 0; i < 3; i++) {
        CHECK(render_spliced(75, starts[i], &s, &st, &err) == 0, "render from %lld: %s", (long long)starts[i], err.msg);
        CHECK(st.spliced == 8 && st.full == 0, "all 8 frames spliced (spliced %llu, full %llu)",
              (unsigned long long)st.spliced, (unsigned long long)st.full);
        CHECK(s.same_bytes == 8, "from %lld: %zu of 8 JPEGs byte-identical to a full encode", (long long)starts[i], s.same_bytes);
        CHECK(s.same_pixels == 8, "from %lld: %zu of 8 decode to the full encode's pixels", (long long)starts[i], s.same_pixels);
    }
}

TEST(another_quality_falls_back_to_a_full_encode) {
    ls_err err = {0};
    splice_sink s;
    pipe_jpeg_stats st = {0};
    CHECK(render_spliced(90, 7, &s, &st, &err) == 0, "render: %s", err.msg);
    CHECK(st.spliced == 0 && st.full == 8, "q90 against a q75 set: spliced %llu, full %llu",
          (unsigned long long)st.spliced, (unsigned long long)st.full);
    CHECK(s.same_bytes == 8 && s.same_pixels == 8, "fallback equals a full q90 encode (%zu, %zu of 8)",
          s.same_bytes, s.same_pixels);
}

/* Sink for renders that restore only pipe_jpeg_region's rectangle. */
typedef struct {
    pipe_jpeg_enc *enc;
    pipe_jpeg_set *set;
    int quality;
    jsplice_encoder *ref;
    uint8_t *ref_out, *whole;
    size_t cap, frames, same_bytes, partial, untouched;
} region_sink;

static int region_need(void *ctx, const pipe_frame *f, ls_box *need, ls_err *err) {
    region_sink *s = ctx;
    return pipe_jpeg_region(s->set, f, s->quality, need, err);
}

#define POISON 0x5A
static int region_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    region_sink *s = ctx;
    const uint8_t *jpg;
    size_t len, ref_len, row = (size_t)f->width * 3;
    if (pipe_jpeg_encode(s->enc, s->set, f, s->quality, &jpg, &len, err)) return -1;
    /* The true finished frame: the avatar frame with render's restored-and-pasted rectangle on top. */
    memcpy(s->whole, avatar_frame(demo, f->avatar_frame), row * (size_t)f->height);
    for (int y = f->valid.y1; y < f->valid.y2; y++)
        memcpy(s->whole + y * row + (size_t)f->valid.x1 * 3, f->bgr + y * f->stride + (size_t)f->valid.x1 * 3,
               (size_t)(f->valid.x2 - f->valid.x1) * 3);
    if (jsplice_encode_full(s->ref, s->whole, f->width, f->height, (int)row, s->quality,
                            JSPLICE_DEFAULT_RESTART_MCUS, s->ref_out, s->cap, &ref_len, err))
        return -1;
    s->frames++;
    s->same_bytes += len == ref_len && memcmp(jpg, s->ref_out, len) == 0;
    int partial = f->valid.x1 > 0 || f->valid.y1 > 0 || f->valid.x2 < f->width || f->valid.y2 < f->height;
    s->partial += partial;
    /* Row 0 lies above every demo box's region: still the poison render never overwrote. */
    size_t x = 0;
    while (partial && f->valid.y1 > 0 && x < row && f->bgr[x] == POISON) x++;
    s->untouched += partial && x == row;
    return 0;
}

static int render_region(int quality, region_sink *s, ls_err *err) {
    static fixture fx;
    if (fixture_open(&fx) != 0) return -1;
    size_t px = (size_t)demo->width * demo->height * 3;
    *s = (region_sink){.quality = quality, .cap = jsplice_max_jpeg_size(demo->width, demo->height, 1)};
    s->set = pipe_jpeg_set_create(demo, 75, 0, 0, err);
    s->enc = pipe_jpeg_enc_create(demo->width, demo->height, err);
    s->ref = jsplice_encoder_create(demo->width, demo->height, err);
    s->ref_out = malloc(s->cap), s->whole = malloc(px);
    memset(fx.w->frame, POISON, px);
    pipe_render_req req = {.av = demo, .feats = fx.feats, .n_frames = fx.frames, .count = 8, .start_frame = 30,
                           .region = region_need};
    pipe_timings t = {0};
    int rc = !s->set || !s->enc || !s->ref ? -1 : pipe_render(fx.w, &req, region_frame, s, &t, err);
    fixture_close(&fx);
    pipe_jpeg_set_free(s->set), pipe_jpeg_enc_free(s->enc), jsplice_encoder_free(s->ref);
    free(s->ref_out), free(s->whole);
    return rc;
}

TEST(restoring_only_the_spliced_region_gives_full_encode_bytes) {
    ls_err err = {0};
    region_sink s;
    CHECK(render_region(75, &s, &err) == 0, "render: %s", err.msg);
    CHECK(s.frames == 8 && s.same_bytes == 8, "%zu of %zu JPEGs equal a full encode of the whole frame",
          s.same_bytes, s.frames);
    CHECK(s.partial == 8 && s.untouched == 8, "8 frames restored only their region (%zu), row 0 untouched (%zu)",
          s.partial, s.untouched);
}

TEST(a_full_encode_fallback_gets_the_whole_frame_restored) {
    ls_err err = {0};
    region_sink s;
    CHECK(render_region(90, &s, &err) == 0, "render: %s", err.msg);
    CHECK(s.frames == 8 && s.same_bytes == 8 && s.partial == 0, "q90: %zu of %zu equal, %zu partial",
          s.same_bytes, s.frames, s.partial);
}

int main(void) {
    const char *b = getenv("LS_BUILD_DIR");
    snprintf(build_dir, sizeof build_dir, "%s", b ? b : "../build");
    ls_err err = {0};
    if (!(demo = avatar_load(build_path("avatars/demo"), &err))) {
        fprintf(stderr, "demo avatar: %s\n", err.msg);
        return 1;
    }
    RUN(cached_inputs_equal_prep_frame_for_every_demo_frame);
    RUN(cached_render_gives_the_same_frames_as_uncached);
    RUN(a_cache_of_another_avatar_is_refused);
    RUN(spliced_frames_equal_full_encodes_of_the_demo_frames);
    RUN(another_quality_falls_back_to_a_full_encode);
    RUN(restoring_only_the_spliced_region_gives_full_encode_bytes);
    RUN(a_full_encode_fallback_gets_the_whole_frame_restored);
    avatar_free(demo);
    return check_summary();
}
