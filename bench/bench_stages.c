/* bench_stages.c - where the time goes, per stage and end to end, on this machine (not a test).
 *
 *   bench_stages --build DIR --json OUT.json [--quick]
 *
 * Uses DIR/models (ave_encoder, unet328: full-size random weights) and DIR/avatars/demo (1280x720),
 * plus a 1920x1080 avatar made in memory by upscaling the first demo frames (boxes scaled alike).
 * Measures, each as the median / min / max of repeated runs, each optimisation beside its naive
 * alternative in the same run:
 *   audio: mel + encoder windows + UNet audio blocks per video frame; encoder per frame (batch 32);
 *   visual (one thread): prep (prep_frame vs the prepared-crop cache), paste-back, the full-frame
 *     copy render makes, JPEG (TurboJPEG full frame vs libjpeg full frame with restarts vs spliced),
 *     and prep + composite + encode together, naive vs optimised, at 1280x720 and 1920x1080;
 *   UNet: batch 1, 8, 25 with tuned settings, and ORT defaults at batch 1 and 8; load times;
 *     frames/s at batch 1, 2, 4, 8, 16, 25, 32 (tuned; ort_tune, as `lipsync tune`) and the best
 *     size ("unet_best_batch"); batch 8 with thread affinity (this thread and the pool pinned,
 *     one CPU each) against without, alternated;
 *   end to end: pipe_clip_features + pipe_render with a JPEG sink at batch 8 and 25 (naive,
 *     optimised, and optimised + pipelined: the UNet on the worker's runner thread beside prep and
 *     composite), against UNet-only runs of the same batches measured alternately in the same run;
 *   heap allocations per warm render (counting allocator) and memory of the caches.
 * Progress goes to stderr; the figures go to OUT.json (bench/report.py prints the table). */
#include "bench_util.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio/features.h"
#include "audio/mel.h"
#include "avatar/avatar.h"
#include "image/jpeg.h"
#include "image/jpeg_splice.h"
#include "image/paste.h"
#include "image/prepare.h"
#include "infer/ort_affinity.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"
#include "infer/ort_tune.h"
#include "pipeline/avatar_cache.h"
#include "pipeline/clip.h"
#include "pipeline/encode.h"
#include "pipeline/render.h"

#define DIE(...) (fprintf(stderr, "bench_stages: " __VA_ARGS__), fputc('\n', stderr), exit(1))

static char build_dir[1024];
static int quick;

static const char *path_in(const char *rel) {
    static char p[2][2048];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", build_dir, rel);
    return p[k];
}

/* Speech-like test signal: a few harmonics of a gliding pitch, syllable-rate amplitude. */
static float *make_audio(size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / 16000.0, f0 = 120 + 30 * sin(2 * M_PI * 0.7 * t);
        double env = 0.5 + 0.5 * sin(2 * M_PI * 4 * t);
        x[i] = (float)(0.3 * env * (sin(2 * M_PI * f0 * t) + 0.5 * sin(4 * M_PI * f0 * t) +
                                    0.25 * sin(6 * M_PI * f0 * t)));
    }
    return x;
}

/* ---------------------------------------------------------------- audio front end */
static void bench_audio(pipe_worker *w) {
    fprintf(stderr, "audio\n");
    ls_err err;
    const size_t n = 10 * 16000, rows = mel_frame_count(n), L = pipe_clip_frames(n);
    float *x = make_audio(n), *mel = malloc(rows * MEL_BINS * sizeof(float));
    float *win = malloc(ORT_ENC_MEL_ELEMS * sizeof(float)), *block = malloc(ORT_UNET_AUDIO_ELEMS * sizeof(float));
    float *feats = calloc(L * FEAT_ENC_DIM, sizeof(float));
    int reps = quick ? 5 : 15;
    double t[15];
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        if (mel_compute(w->mel, x, n, mel, rows, &err)) DIE("mel: %s", err.msg);
        for (size_t k = 0; k < L; k++) {
            feat_encoder_input(mel, rows, k, win, &err);
            feat_window(feats, L, k, block, &err);
        }
        t[r] = (bench_now_ms() - t0) * 1e3 / (double)L;
    }
    bench_add("stage", "audio_front", "mel + windows (encoder excluded)", "optimised", "-", "us/frame",
              bench_stats(t, reps));
    /* Encoder, batch PIPE_ENC_BATCH as pipe_clip_features runs it. */
    for (int b = 0; b < PIPE_ENC_BATCH; b++) feat_encoder_input(mel, rows, (size_t)b, w->enc_mel + b * ORT_ENC_MEL_ELEMS, &err);
    ort_binding_run(w->enc_binding, PIPE_ENC_BATCH, &err);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        if (ort_binding_run(w->enc_binding, PIPE_ENC_BATCH, &err)) DIE("encoder: %s", err.msg);
        t[r] = (bench_now_ms() - t0) / PIPE_ENC_BATCH;
    }
    bench_add("stage", "encoder", "audio encoder (batch 32)", "optimised", "-", "ms/frame", bench_stats(t, reps));
    free(x), free(mel), free(win), free(block), free(feats);
}

/* ---------------------------------------------------------------- visual stages, one thread */
typedef struct {
    const avatar *av;
    const char *res;
    pipe_avcache *cache;
    pipe_jpeg_set *set;
} vis_avatar;

/* A w x h avatar of the first n demo frames, each upscaled (cv2-exact cubic), boxes scaled. */
static avatar *upscale_avatar(const avatar *src, int n, int w, int h) {
    ls_err err;
    avatar *a = calloc(1, sizeof *a);
    *a = (avatar){.width = w, .height = h, .fps = 25, .frame_count = n,
                  .frames = malloc((size_t)n * w * h * 3), .boxes = malloc((size_t)n * sizeof(ls_box))};
    resize_scratch rs;
    if (resize_scratch_init(&rs, w, h, &err)) DIE("%s", err.msg);
    double sx = (double)w / src->width, sy = (double)h / src->height;
    for (int i = 0; i < n; i++) {
        if (resize_bgr(avatar_frame(src, i), src->width, src->height, (size_t)src->width * 3,
                       a->frames + (size_t)i * w * h * 3, w, h, (size_t)w * 3, &rs, &err))
            DIE("upscale: %s", err.msg);
        ls_box b = src->boxes[i];
        a->boxes[i] = (ls_box){(int)(b.x1 * sx), (int)(b.y1 * sy), (int)(b.x2 * sx), (int)(b.y2 * sy)};
    }
    resize_scratch_free(&rs);
    return a;
}

static void bench_caches(vis_avatar *va) {
    ls_err err;
    const avatar *av = va->av;
    double t0 = bench_now_ms();
    if (!(va->cache = pipe_avcache_create(av, &err))) DIE("cache: %s", err.msg);
    double t1 = bench_now_ms();
    if (!(va->set = pipe_jpeg_set_create(av, 75, 0, 1, &err))) DIE("jpeg set: %s", err.msg);
    double t2 = bench_now_ms();
    int n = av->frame_count;
    char name[64];
    snprintf(name, sizeof name, "cache_build_%s", va->res);
    bench_add_value("load", name, "prepared-crop cache build", va->res, "ms/avatar frame", (t1 - t0) / n);
    snprintf(name, sizeof name, "jpegset_build_%s", va->res);
    bench_add_value("load", name, "JPEG backgrounds build", va->res, "ms/avatar frame", (t2 - t1) / n);
    snprintf(name, sizeof name, "cache_bytes_%s", va->res);
    bench_add_value("memory", name, "prepared-crop cache", va->res, "KB/avatar frame",
                    (double)pipe_avcache_bytes(va->cache) / n / 1024);
    snprintf(name, sizeof name, "jpegset_bytes_%s", va->res);
    bench_add_value("memory", name, "JPEG backgrounds", va->res, "KB/avatar frame",
                    (double)pipe_jpeg_set_bytes(va->set) / n / 1024);
    snprintf(name, sizeof name, "avatar_bytes_%s", va->res);
    bench_add_value("memory", name, "avatar frames (decoded BGR)", va->res, "KB/avatar frame",
                    (double)av->width * av->height * 3 / 1024);
}

enum { V_PREP, V_PREP_CACHED, V_COPY, V_COPY_REGION, V_PASTE_NAIVE, V_PASTE, V_TJ, V_FULL, V_SPLICE, V_NAIVE,
       V_OPT, V_N };

/* Copies rectangle r of src into dst (same stride), as render restores the region a sink reads. */
static void copy_region(uint8_t *dst, const uint8_t *src, size_t stride, ls_box r) {
    for (int y = r.y1; y < r.y2; y++)
        memcpy(dst + y * stride + (size_t)r.x1 * 3, src + y * stride + (size_t)r.x1 * 3, (size_t)(r.x2 - r.x1) * 3);
}

/* The paste-back before fusing: write the crop's inside, then resize the crop. */
static void paste_naive(const float *pred, uint8_t *crop, ls_box box, uint8_t *frame, size_t stride,
                        resize_scratch *rs, ls_err *err) {
    paste_pred_to_crop(pred, crop);
    if (resize_bgr(crop, PREP_CROP, PREP_CROP, PREP_CROP * 3, frame + box.y1 * stride + (size_t)box.x1 * 3,
                   box_width(box), box_height(box), stride, rs, err))
        DIE("paste: %s", err->msg);
}

/* Times each visual step on frames 0..n-1 (per frame, so per-frame samples), steps interleaved per
 * frame so that noise from other processes hits every variant alike. */
static void bench_visual(vis_avatar *va, int frames) {
    fprintf(stderr, "visual %s\n", va->res);
    ls_err err;
    const avatar *av = va->av;
    int w = av->width, h = av->height, stride = w * 3;
    resize_scratch rs;
    if (resize_scratch_init(&rs, w > h ? w : h, w > h ? w : h, &err)) DIE("%s", err.msg);
    jpeg_enc *tj = jpeg_enc_create(w, h, 75, &err);
    pipe_jpeg_enc *pe = pipe_jpeg_enc_create(w, h, &err);
    jsplice_encoder *js = jsplice_encoder_create(w, h, &err);
    size_t cap = jsplice_max_jpeg_size(w, h, 1), len;
    uint8_t *out = malloc(cap), *crop = malloc(PREP_CROP_BYTES), *frame = malloc((size_t)stride * h);
    float *input = malloc(PREP_INPUT_FLOATS * sizeof(float)), *pred = malloc(ORT_UNET_OUT_ELEMS * sizeof(float));
    if (!tj || !pe || !js) DIE("encoders: %s", err.msg);
    double *t[V_N], bytes_tj = 0, bytes_splice = 0, bytes_norst = 0;
    for (int v = 0; v < V_N; v++) t[v] = malloc(sizeof(double) * (size_t)frames);
    for (int i = 0; i < frames; i++) {
        int k = i % av->frame_count;
        const uint8_t *src = avatar_frame(av, k);
        ls_box box = av->boxes[k];
        pipe_frame f = {.index = (size_t)i, .avatar_frame = k, .bgr = frame, .width = w, .height = h,
                        .stride = (size_t)stride, .box = box};
        double a = bench_now_ms(), b, c;
        if (prep_frame(src, w, h, (size_t)stride, box, crop, input, &rs, &err)) DIE("prep: %s", err.msg);
        t[V_PREP][i] = bench_now_ms() - a;
        /* The prediction: the network's own view of the face (realistic JPEG content). */
        memcpy(pred, input, ORT_UNET_OUT_ELEMS * sizeof(float));
        a = bench_now_ms();
        pipe_avcache_prepare(va->cache, k, crop, input);
        t[V_PREP_CACHED][i] = bench_now_ms() - a;
        ls_box region;
        if (pipe_jpeg_region(va->set, &f, 75, &region, &err)) DIE("region: %s", err.msg);
        a = bench_now_ms();
        memcpy(frame, src, (size_t)stride * h);
        b = bench_now_ms();
        paste_naive(pred, crop, box, frame, (size_t)stride, &rs, &err);
        c = bench_now_ms();
        t[V_COPY][i] = b - a, t[V_PASTE_NAIVE][i] = c - b;
        a = bench_now_ms();
        copy_region(frame, src, (size_t)stride, region);
        b = bench_now_ms();
        if (paste_frame(pred, crop, box, frame, w, h, (size_t)stride, &rs, &err)) DIE("paste: %s", err.msg);
        c = bench_now_ms();
        t[V_COPY_REGION][i] = b - a, t[V_PASTE][i] = c - b;
        const uint8_t *jpg;
        a = bench_now_ms();
        if (jpeg_encode_bgr(tj, frame, w, h, (size_t)stride, &jpg, &len, &err)) DIE("tj: %s", err.msg);
        t[V_TJ][i] = bench_now_ms() - a;
        bytes_tj += (double)len;
        a = bench_now_ms();
        if (jsplice_encode_full(js, frame, w, h, stride, 75, JSPLICE_DEFAULT_RESTART_MCUS, out, cap, &len, &err))
            DIE("full: %s", err.msg);
        t[V_FULL][i] = bench_now_ms() - a;
        a = bench_now_ms();
        if (pipe_jpeg_encode(pe, va->set, &f, 75, &jpg, &len, &err)) DIE("splice: %s", err.msg);
        t[V_SPLICE][i] = bench_now_ms() - a;
        bytes_splice += (double)len;
        if (i < 20) { /* size of the same encode without restart markers (interval beyond the image) */
            jsplice_encode_full(js, frame, w, h, stride, 75, 65535, out, cap, &len, &err);
            bytes_norst += (double)len;
        }
        /* The whole CPU path around the UNet, naive then optimised, on the same frame. */
        a = bench_now_ms();
        prep_frame(src, w, h, (size_t)stride, box, crop, input, &rs, &err);
        memcpy(frame, src, (size_t)stride * h);
        paste_naive(pred, crop, box, frame, (size_t)stride, &rs, &err);
        jpeg_encode_bgr(tj, frame, w, h, (size_t)stride, &jpg, &len, &err);
        b = bench_now_ms();
        pipe_avcache_prepare(va->cache, k, crop, input);
        pipe_jpeg_region(va->set, &f, 75, &region, &err);
        copy_region(frame, src, (size_t)stride, region);
        paste_frame(pred, crop, box, frame, w, h, (size_t)stride, &rs, &err);
        pipe_jpeg_encode(pe, va->set, &f, 75, &jpg, &len, &err);
        c = bench_now_ms();
        t[V_NAIVE][i] = b - a, t[V_OPT][i] = c - b;
    }
    static const struct { const char *name, *label, *variant; } v[V_N] = {
        {"prep", "input preparation: prep_frame", "naive"},
        {"prep_cached", "input preparation: prepared-crop cache", "optimised"},
        {"frame_copy", "composite: copy whole avatar frame", "naive"},
        {"frame_copy_region", "composite: restore the spliced region", "optimised"},
        {"paste_naive", "paste-back: build crop, resize it", "naive"},
        {"paste", "paste-back: resize from the UNet planes", "optimised"},
        {"jpeg_tj", "JPEG full frame (TurboJPEG)", "naive"},
        {"jpeg_full_rst", "JPEG full frame (libjpeg, restarts)", "naive"},
        {"jpeg_splice", "JPEG incremental (splice)", "optimised"},
        {"cpu_naive", "prep+composite+JPEG, naive", "naive"},
        {"cpu_opt", "prep+composite+JPEG, optimised", "optimised"}};
    bench_stat s[V_N];
    char name[64];
    for (int i = 0; i < V_N; i++) {
        snprintf(name, sizeof name, "%s_%s", v[i].name, va->res);
        s[i] = bench_add("stage", name, v[i].label, v[i].variant, va->res, "ms/frame", bench_stats(t[i], frames));
    }
    snprintf(name, sizeof name, "speedup_prep_%s", va->res);
    bench_add_value("ratio", name, "prep: naive / cached", va->res, "x", s[V_PREP].med / s[V_PREP_CACHED].med);
    snprintf(name, sizeof name, "speedup_paste_%s", va->res);
    bench_add_value("ratio", name, "paste-back: naive / fused", va->res, "x", s[V_PASTE_NAIVE].med / s[V_PASTE].med);
    snprintf(name, sizeof name, "speedup_copy_%s", va->res);
    bench_add_value("ratio", name, "frame copy: whole / region", va->res, "x", s[V_COPY].med / s[V_COPY_REGION].med);
    snprintf(name, sizeof name, "speedup_jpeg_%s", va->res);
    bench_add_value("ratio", name, "JPEG: TurboJPEG full / splice", va->res, "x", s[V_TJ].med / s[V_SPLICE].med);
    snprintf(name, sizeof name, "speedup_cpu_%s", va->res);
    bench_add_value("ratio", name, "prep+composite+JPEG: naive / optimised", va->res, "x", s[V_NAIVE].med / s[V_OPT].med);
    snprintf(name, sizeof name, "jpeg_bytes_tj_%s", va->res);
    bench_add_value("memory", name, "JPEG size, TurboJPEG q75", va->res, "KB/frame", bytes_tj / frames / 1024);
    snprintf(name, sizeof name, "jpeg_bytes_splice_%s", va->res);
    bench_add_value("memory", name, "JPEG size, spliced q75 restart 4", va->res, "KB/frame", bytes_splice / frames / 1024);
    snprintf(name, sizeof name, "restart_cost_%s", va->res);
    bench_add_value("ratio", name, "restart markers: size cost", va->res, "%",
                    100.0 * (bytes_splice / frames / (bytes_norst / (frames < 20 ? frames : 20)) - 1));
    for (int i = 0; i < V_N; i++) free(t[i]);
    free(out), free(crop), free(frame), free(input), free(pred);
    jpeg_enc_destroy(tj), pipe_jpeg_enc_free(pe), jsplice_encoder_free(js);
    resize_scratch_free(&rs);
}

/* ---------------------------------------------------------------- UNet */
typedef struct {
    ort_runtime *rt;
    ort_model *enc, *unet, *unet_def, *unet_nospin, *unet_1t, *unet_aff;
    pipe_worker *w, *w_def, *w_nospin, *w_1t, *w_aff;
    int cpus[ORT_AFF_MAX_CPUS], n_cpus; /* the CPUs this process may use (sched_getaffinity) */
} models;

static ort_model *load_timed(models *m, const char *file, ort_role role, const ort_model_opts *o,
                             const char *name, const char *label) {
    ls_err err;
    double t0 = bench_now_ms();
    ort_model *x = ort_model_load(m->rt, path_in(file), role, o, &err);
    if (!x) DIE("%s: %s", file, err.msg);
    if (name) bench_add_value("load", name, label, "-", "ms", bench_now_ms() - t0);
    return x;
}

static pipe_worker *worker_for(ort_model *enc, ort_model *unet, int batch) {
    ls_err err;
    pipe_worker_cfg wc = {.max_batch = batch, .max_frame_w = 1280, .max_frame_h = 720};
    pipe_worker *w = pipe_worker_create(&wc, &err);
    if (!w || pipe_worker_bind(w, enc, unet, &err)) DIE("worker: %s", err.msg);
    for (size_t i = 0; i < (size_t)batch * ORT_UNET_IMG_ELEMS; i++) w->unet_image[i] = (float)(i % 251) / 251.0f;
    memset(w->unet_audio, 0, (size_t)batch * ORT_UNET_AUDIO_ELEMS * sizeof(float));
    return w;
}

static void models_open(models *m) {
    ls_err err;
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char opt_path[2048];
    snprintf(opt_path, sizeof opt_path, "%s", path_in("bench/unet328.optimized.onnx"));
    if (!(m->rt = ort_runtime_create(NULL, &err))) DIE("runtime: %s", err.msg);
    /* Tuned: one intra-op thread per core, one inter-op thread, every graph optimisation, the
     * optimised graph cached on disk. The first load optimises and saves, the second reads it. */
    ort_model_opts tuned = {.intra_threads = cores, .inter_threads = 1, .opt_level = ORT_OPT_ALL,
                            .optimized_path = opt_path};
    unlink(opt_path);
    ort_model_destroy(load_timed(m, "models/unet328.onnx", ORT_ROLE_UNET, &tuned, "load_unet_tuned_cold",
                                 "UNet load: tuned, optimise + save cache"));
    m->unet = load_timed(m, "models/unet328.onnx", ORT_ROLE_UNET, &tuned, "load_unet_tuned_cached",
                         "UNet load: tuned, from optimised cache");
    m->unet_def = load_timed(m, "models/unet328.onnx", ORT_ROLE_UNET, NULL, "load_unet_default",
                             "UNet load: ORT defaults");
    ort_model_opts nospin = tuned;
    nospin.no_spin = 1;
    m->unet_nospin = load_timed(m, "models/unet328.onnx", ORT_ROLE_UNET, &nospin, NULL, NULL);
    /* One intra-op thread: what the UNet gets if the other core runs a CPU stage beside it. */
    ort_model_opts one = tuned;
    one.intra_threads = 1;
    m->unet_1t = load_timed(m, "models/unet328.onnx", ORT_ROLE_UNET, &one, NULL, NULL);
    /* Tuned plus thread affinity (onnx.thread_affinity: auto with one worker): the pool's threads
     * on CPUs 2..cores (this thread takes the first while it runs this model). */
    if ((m->n_cpus = ort_aff_allowed(m->cpus, ORT_AFF_MAX_CPUS, &err)) < 1) DIE("CPUs: %s", err.msg);
    int pool[ORT_AFF_MAX_CPUS];
    ort_aff_take(m->cpus, m->n_cpus, 1, cores - 1, pool);
    ort_model_opts aff = tuned;
    aff.pool_cpus = pool, aff.n_pool_cpus = cores - 1;
    m->unet_aff = load_timed(m, "models/unet328.onnx", ORT_ROLE_UNET, &aff, NULL, NULL);
    ort_model_opts enc = {.intra_threads = cores, .inter_threads = 1, .no_spin = 1};
    m->enc = load_timed(m, "models/ave_encoder.onnx", ORT_ROLE_ENCODER, &enc, NULL, NULL);
    m->w = worker_for(m->enc, m->unet, 25);
    m->w_def = worker_for(NULL, m->unet_def, 8);
    m->w_nospin = worker_for(NULL, m->unet_nospin, 8);
    m->w_1t = worker_for(NULL, m->unet_1t, 8);
    m->w_aff = worker_for(NULL, m->unet_aff, 8);
}

static void models_close(models *m) {
    pipe_worker_destroy(m->w), pipe_worker_destroy(m->w_def), pipe_worker_destroy(m->w_nospin);
    pipe_worker_destroy(m->w_1t), ort_model_destroy(m->unet_1t);
    pipe_worker_destroy(m->w_aff), ort_model_destroy(m->unet_aff);
    ort_model_destroy(m->unet), ort_model_destroy(m->unet_def), ort_model_destroy(m->unet_nospin);
    ort_model_destroy(m->enc);
    ort_runtime_destroy(m->rt);
}

static double unet_run_ms(pipe_worker *w, int batch) {
    ls_err err;
    double t0 = bench_now_ms();
    if (ort_binding_run(w->unet_binding, batch, &err)) DIE("UNet: %s", err.msg);
    return bench_now_ms() - t0;
}

static void bench_unet(models *m) {
    static const int batches[3] = {1, 8, 25};
    for (int bi = 0; bi < 3; bi++) {
        int b = batches[bi], reps = quick ? 1 : (b == 1 ? 5 : 3), with_def = b <= 8;
        fprintf(stderr, "UNet batch %d\n", b);
        double t[4][5];
        int with_1t = b == 8;
        unet_run_ms(m->w, b); /* warm-up: ORT sizes its arena on the first run of a shape */
        if (with_def) unet_run_ms(m->w_def, b), unet_run_ms(m->w_nospin, b);
        if (with_1t) unet_run_ms(m->w_1t, b);
        for (int r = 0; r < reps; r++) { /* alternated, so load from other processes hits both */
            t[0][r] = unet_run_ms(m->w, b) / b;
            if (with_def) t[1][r] = unet_run_ms(m->w_def, b) / b, t[2][r] = unet_run_ms(m->w_nospin, b) / b;
            if (with_1t) t[3][r] = unet_run_ms(m->w_1t, b) / b;
        }
        char name[64], label[96];
        snprintf(name, sizeof name, "unet_b%d", b);
        snprintf(label, sizeof label, "UNet batch %d, tuned", b);
        bench_stat tuned = bench_add("unet", name, label, "optimised", "-", "ms/frame", bench_stats(t[0], reps));
        if (with_1t) { /* the bound of a pipeline that gives one core to a CPU stage beside the UNet */
            snprintf(name, sizeof name, "unet_b%d_1thread", b);
            snprintf(label, sizeof label, "UNet batch %d, 1 intra-op thread", b);
            bench_stat one = bench_add("unet", name, label, "", "-", "ms/frame", bench_stats(t[3], reps));
            snprintf(name, sizeof name, "overlap_bound_b%d", b);
            snprintf(label, sizeof label, "UNet batch %d: 1-thread / all-core throughput", b);
            bench_add_value("ratio", name, label, "-", "x", tuned.med / one.med);
        }
        if (!with_def) continue;
        snprintf(name, sizeof name, "unet_b%d_default", b);
        snprintf(label, sizeof label, "UNet batch %d, ORT defaults", b);
        bench_stat def = bench_add("unet", name, label, "naive", "-", "ms/frame", bench_stats(t[1], reps));
        snprintf(name, sizeof name, "unet_b%d_nospin", b);
        snprintf(label, sizeof label, "UNet batch %d, tuned without spinning", b);
        bench_add("unet", name, label, "", "-", "ms/frame", bench_stats(t[2], reps));
        snprintf(name, sizeof name, "speedup_unet_b%d", b);
        snprintf(label, sizeof label, "UNet batch %d: defaults / tuned", b);
        bench_add_value("ratio", name, label, "-", "x", def.med / tuned.med);
    }
}

/* Batch 8, tuned, with and without thread affinity, alternated: pinned, this thread sits on the
 * first allowed CPU for the run (the pool is pinned by its session); unpinned, it may run anywhere
 * (and the unpinned session's pool threads were started unpinned). */
static void bench_unet_affinity(models *m) {
    ls_err err;
    int reps = quick ? 1 : 5;
    double t[2][5];
    fprintf(stderr, "UNet batch 8, thread affinity on/off\n");
    unet_run_ms(m->w_aff, 8), unet_run_ms(m->w, 8); /* warm-up */
    for (int r = 0; r < reps; r++) {
        if (ort_aff_pin_self(m->cpus, 1, &err)) DIE("pin: %s", err.msg);
        t[0][r] = unet_run_ms(m->w_aff, 8) / 8;
        if (ort_aff_pin_self(m->cpus, m->n_cpus, &err)) DIE("unpin: %s", err.msg);
        t[1][r] = unet_run_ms(m->w, 8) / 8;
    }
    bench_stat on = bench_add("unet", "unet_b8_affinity", "UNet batch 8, tuned, threads pinned", "", "-", "ms/frame",
                              bench_stats(t[0], reps));
    bench_stat off = bench_add("unet", "unet_b8_noaffinity", "UNet batch 8, tuned, threads not pinned", "", "-",
                               "ms/frame", bench_stats(t[1], reps));
    bench_add_value("ratio", "speedup_affinity_b8", "UNet batch 8: not pinned / pinned", "-", "x", off.med / on.med);
}

/* Frames/s of the tuned UNet per batch size (the sweep `lipsync tune` runs) and the best size. */
static void bench_unet_batches(models *m) {
    static const int sizes[] = {1, 2, 4, 8, 16, 25, 32};
    enum { N = sizeof sizes / sizeof *sizes };
    ort_tune_point p[N];
    ls_err err;
    fprintf(stderr, "UNet batch sizes 1..32 (%s per size)\n", quick ? "3 runs" : "2 s, at least 3 runs");
    if (ort_tune_batches(m->unet, sizes, N, quick ? 0.0 : 2.0, p, &err)) DIE("sweep: %s", err.msg);
    for (int i = 0; i < N; i++) {
        char name[64], label[96];
        snprintf(name, sizeof name, "unet_fps_b%d", p[i].batch);
        snprintf(label, sizeof label, "UNet batch %d, tuned: throughput", p[i].batch);
        bench_stat s = {p[i].fps, p[i].fps_min, p[i].fps_max, p[i].runs};
        bench_add("unet", name, label, "", "-", "frames/s", s);
    }
    bench_add_value("unet", "unet_best_batch", "UNet: batch size with the most frames/s", "-", "batch",
                    p[ort_tune_best(p, N)].batch);
}

/* ---------------------------------------------------------------- end to end */
typedef struct {
    pipe_worker *w;
    pipe_jpeg_enc *pe;
    pipe_jpeg_set *set; /* NULL: TurboJPEG full frames */
    double bytes;
} e2e_sink;

static int e2e_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    e2e_sink *s = ctx;
    const uint8_t *jpg;
    size_t len;
    int rc = s->set ? pipe_jpeg_encode(s->pe, s->set, f, 0, &jpg, &len, err)
                    : jpeg_encode_bgr(s->w->jpeg, f->bgr, f->width, f->height, f->stride, &jpg, &len, err);
    s->bytes += (double)len;
    return rc;
}

static int e2e_region(void *ctx, const pipe_frame *f, ls_box *need, ls_err *err) {
    e2e_sink *s = ctx;
    return pipe_jpeg_region(s->set, f, 0, need, err);
}

typedef struct {
    float *pcm, *mel, *feats;
    size_t n, frames;
} clip;

/* The shortest clip (in 200-sample steps) with at least `frames` video frames. */
static void clip_make(clip *c, size_t frames) {
    size_t n = 3200;
    while (pipe_clip_frames(n) < frames) n += 200;
    c->n = n, c->frames = frames;
    c->pcm = make_audio(n);
    c->mel = malloc(pipe_clip_mel_floats(n) * sizeof(float));
    c->feats = malloc(pipe_clip_feat_floats(n) * sizeof(float));
}

/* One offline render of the clip: features + render with a JPEG sink. Returns ms. */
static double e2e_run(pipe_worker *w, const vis_avatar *va, const clip *c, int optimised, pipe_jpeg_enc *pe,
                      pipe_timings *t, long alloc[4]) {
    ls_err err;
    size_t n_frames;
    e2e_sink s = {.w = w, .pe = pe, .set = optimised ? va->set : NULL};
    pipe_render_req req = {.av = va->av, .feats = c->feats, .count = c->frames, .start_frame = 1,
                           .prepared = optimised ? va->cache : NULL, .region = optimised ? e2e_region : NULL};
    double t0 = bench_now_ms();
    if (alloc) bench_alloc_start();
    if (pipe_clip_features(w, c->pcm, c->n, c->mel, c->feats, &n_frames, &err)) DIE("features: %s", err.msg);
    if (alloc) bench_alloc_stop(&alloc[0], &alloc[1]), bench_alloc_start();
    req.n_frames = n_frames;
    if (pipe_render(w, &req, e2e_frame, &s, t, &err)) DIE("render: %s", err.msg);
    if (alloc) bench_alloc_stop(&alloc[2], &alloc[3]);
    return bench_now_ms() - t0;
}

static void bench_e2e(models *m, const vis_avatar *va) {
    ls_err err;
    pipe_jpeg_enc *pe = pipe_jpeg_enc_create(va->av->width, va->av->height, &err);
    static const int batches[2] = {8, 25};
    for (int bi = 0; bi < 2; bi++) {
        /* 3 batches per run: the pipelined render overlaps 2 of 3 preparations and composites. */
        int b = batches[bi], reps = quick ? 1 : 5, nb = quick ? 2 : 3;
        fprintf(stderr, "end to end, batch %d, %d frames\n", b, b * nb);
        clip c;
        clip_make(&c, (size_t)(b * nb));
        pipe_worker_cfg wc = {.max_batch = b, .max_frame_w = va->av->width, .max_frame_h = va->av->height};
        pipe_worker *w = pipe_worker_create(&wc, &err);
        if (!w || pipe_worker_bind(w, m->enc, m->unet, &err)) DIE("worker: %s", err.msg);
        wc.pipeline = 1;
        pipe_worker *wp = pipe_worker_create(&wc, &err);
        if (!wp || pipe_worker_bind(wp, m->enc, m->unet, &err)) DIE("pipelined worker: %s", err.msg);
        pipe_timings tw = {0}, topt = {0}, tnaive = {0}, tpipe = {0};
        e2e_run(w, va, &c, 1, pe, &tw, NULL); /* warm-up */
        e2e_run(wp, va, &c, 1, pe, &tw, NULL);
        double fps_u[5], fps_n[5], fps_o[5], fps_p[5], r_n[5], r_o[5], r_p[5];
        for (int r = 0; r < reps; r++) {
            double u = 0;
            for (int k = 0; k < nb; k++) u += unet_run_ms(w, b);
            fps_u[r] = 1e3 * b * nb / u;
            fps_n[r] = 1e3 * (double)c.frames / e2e_run(w, va, &c, 0, pe, &tnaive, NULL);
            fps_o[r] = 1e3 * (double)c.frames / e2e_run(w, va, &c, 1, pe, &topt, NULL);
            fps_p[r] = 1e3 * (double)c.frames / e2e_run(wp, va, &c, 1, pe, &tpipe, NULL);
            r_n[r] = fps_n[r] / fps_u[r], r_o[r] = fps_o[r] / fps_u[r], r_p[r] = fps_p[r] / fps_u[r];
        }
        char name[64], label[96];
#define FIG(key, lab, var, unit, arr)                                                     \
        snprintf(name, sizeof name, key "_b%d", b), snprintf(label, sizeof label, lab " (batch %d)", b), \
            bench_add("e2e", name, label, var, va->res, unit, bench_stats(arr, reps))
        FIG("fps_unet_only", "UNet-only throughput", "", "frames/s", fps_u);
        FIG("fps_e2e_naive", "offline render, naive", "naive", "frames/s", fps_n);
        FIG("fps_e2e", "offline render, optimised", "optimised", "frames/s", fps_o);
        FIG("e2e_ratio_naive", "end-to-end / UNet-only, naive", "naive", "ratio", r_n);
        FIG("e2e_ratio", "end-to-end / UNet-only, optimised", "optimised", "ratio", r_o);
        FIG("fps_e2e_pipelined", "offline render, optimised + pipelined", "pipelined", "frames/s", fps_p);
        FIG("e2e_ratio_pipelined", "end-to-end / UNet-only, optimised + pipelined", "pipelined", "ratio", r_p);
#undef FIG
        /* Where the optimised render's time went, per frame (from pipe_render's own timings). */
        double nf = (double)topt.frames;
        const char *parts[4] = {"prep", "unet", "paste", "sink"};
        double ns[4] = {(double)topt.prep_ns, (double)topt.unet_ns, (double)topt.paste_ns, (double)topt.sink_ns};
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof name, "e2e_%s_b%d", parts[i], b);
            snprintf(label, sizeof label, "in render, optimised: %s (batch %d)", parts[i], b);
            bench_add_value("e2e", name, label, va->res, "ms/frame", ns[i] / 1e6 / nf);
        }
        if (b == 8) { /* heap allocations of one warm render, and of the UNet runs alone */
            long a[4], u[2];
            e2e_run(w, va, &c, 1, pe, &tw, a);
            bench_alloc_start();
            for (int k = 0; k < nb; k++) unet_run_ms(w, b);
            bench_alloc_stop(&u[0], &u[1]);
            static const char *what[3] = {"clip features", "render (UNet included)", "UNet runs alone (ORT)"};
            static const char *key[3] = {"features", "render", "unet"};
            long v[3][2] = {{a[0], a[1]}, {a[2], a[3]}, {u[0], u[1]}};
            for (int i = 0; i < 3; i++) {
                snprintf(name, sizeof name, "alloc_%s_calls", key[i]);
                snprintf(label, sizeof label, "%s: allocations per %zu-frame clip", what[i], c.frames);
                bench_add_value("alloc", name, label, va->res, "calls", (double)v[i][0]);
                snprintf(name, sizeof name, "alloc_%s_bytes", key[i]);
                snprintf(label, sizeof label, "%s: bytes per %zu-frame clip", what[i], c.frames);
                bench_add_value("alloc", name, label, va->res, "bytes", (double)v[i][1]);
            }
        }
        pipe_worker_destroy(w);
        pipe_worker_destroy(wp);
        free(c.pcm), free(c.mel), free(c.feats);
    }
    pipe_jpeg_enc_free(pe);
}

int main(int argc, char **argv) {
    const char *json = NULL;
    snprintf(build_dir, sizeof build_dir, "build");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--build") && i + 1 < argc) snprintf(build_dir, sizeof build_dir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else DIE("usage: bench_stages --build DIR --json OUT.json [--quick]");
    }
    if (!json) DIE("--json OUT.json is required");
    bench_figures = cJSON_CreateArray();
    ls_err err;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", path_in("bench"));
    mkdir(dir, 0755);
    fprintf(stderr, "loading the demo avatar\n");
    avatar *demo = avatar_load(path_in("avatars/demo"), &err);
    if (!demo) DIE("demo avatar: %s", err.msg);
    avatar *hd = upscale_avatar(demo, quick ? 10 : 25, 1920, 1080);
    vis_avatar v720 = {.av = demo, .res = "1280x720"}, v1080 = {.av = hd, .res = "1920x1080"};
    bench_caches(&v720);
    bench_caches(&v1080);
    bench_visual(&v720, quick ? 30 : 150);
    bench_visual(&v1080, quick ? 20 : 75);
    models m;
    models_open(&m);
    bench_audio(m.w);
    bench_unet(&m);
    bench_unet_affinity(&m);
    bench_unet_batches(&m);
    bench_e2e(&m, &v720);
    models_close(&m);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "figures", bench_figures);
    char *text = cJSON_Print(root);
    FILE *f = fopen(json, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) DIE("cannot write %s", json);
    free(text);
    cJSON_Delete(root);
    pipe_avcache_free(v720.cache), pipe_avcache_free(v1080.cache);
    pipe_jpeg_set_free(v720.set), pipe_jpeg_set_free(v1080.set);
    free(hd->frames), free(hd->boxes), free(hd);
    avatar_free(demo);
    return 0;
}
