/* bench_gpu.c - the UNet on ONNX Runtime's CUDA provider: speed per setting, and accuracy against
 * the CPU and between precisions. Run by scripts/gpu-check.sh on a GPU machine.
 *
 *   bench_gpu --unet FP32.onnx [--unet-fp16 FP16.onnx] [--avatar DIR --encoder ENC.onnx --audio WAV]
 *             [--device N] [--batches 1,8,25] [--repeats N] [--provider cuda|cpu] [--json OUT]
 *             [--api auto|ep_device|classic] [--host-tensors 1] [--uint8 0] [--graphs 0]
 *             [--probe STEP --encoder ENC.onnx]
 *
 * --probe runs one small step and exits 0 when it worked (encoder | unet | unet_u8 | both |
 * graphs): scripts/gpu-check.sh runs each in its own process, so that a crash inside ONNX Runtime
 * shows which step and API it belongs to instead of ending the whole check.
 * Speed: for each setting (precision, float or uint8 I/O, CUDA graphs off/on) and batch size, the
 * median / min / max of `repeats` runs after 3 warm-ups (CUDA graphs capture during those), twice:
 * "model" = RunWithBinding on tensors already on the GPU (the model's own limit, the issue's
 * UNet-only figure) and "with copies" = ort_binding_run, what lipsyncd does per batch (inputs
 * host -> GPU, run, output GPU -> host).
 * Accuracy (with --avatar): real frames of the avatar (prep_frame) with the audio features of WAV
 * (the encoder on the CPU), run through (a) the CPU fp32 model, (b) CUDA fp32 with TF32 off,
 * (c) CUDA fp32 uint8 I/O, (d) CUDA fp16. Reports max |a-b|, bytes where (c) differs from the CPU
 * float path converted as paste.c does, and the PSNR of (d) against (b) on the 320x320 x 255 output.
 * Order: the settings without CUDA graphs, the accuracy, then the settings with graphs (riskiest
 * last); --uint8 0 / --graphs 0 leave out what a probe showed failing. Output is line-buffered and
 * the JSON rewritten after each part, so a crash keeps what came before.
 * Not a test: figures depend on the machine. --provider cpu runs the same code on the CPU (to check
 * the program itself on a machine without a GPU). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_time.h"
#include "audio/features.h"
#include "audio/pcm.h"
#include "avatar/avatar.h"
#include "common/err.h"
#include "image/paste.h"
#include "image/prepare.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"
#include "pipeline/clip.h"
#include "pipeline/worker.h"

#define MAX_BATCHES 8
#define ACC_FRAMES 16

typedef struct {
    const char *unet, *unet16, *avatar, *encoder, *audio, *json, *probe;
    int device, repeats, n_batches, batches[MAX_BATCHES], host_tensors;
    int uint8, graphs; /* 0: leave out the uint8 I/O / CUDA-graph settings */
    ort_ep_kind provider;
    ort_cuda_api api;
} options;

typedef struct {
    const char *label;
    int fp16, uint8_io, cuda_graph;
} setting;


static ort_ep_cfg ep_of(const options *o, int cuda_graph, int tf32) {
    return (ort_ep_cfg){.kind = o->provider, .device_id = o->device, .cudnn_search = ORT_CUDNN_EXHAUSTIVE,
                        .tf32 = tf32, .cuda_graph = cuda_graph, .api = o->api, .host_tensors = o->host_tensors};
}

static ort_model *load(ort_runtime *rt, const char *path, ort_role role, const ort_ep_cfg *ep, int u8,
                       double *ms, ls_err *err) {
    ort_model_opts mo = {.ep = ep, .uint8_io = u8};
    double t0 = bench_now_ms();
    ort_model *m = ort_model_load(rt, path, role, &mo, err);
    if (ms) *ms = bench_now_ms() - t0;
    return m;
}

/* Buffers for one binding of a (possibly wrapped) UNet, filled with deterministic data. */
typedef struct {
    void *in[2], *out;
} buffers;

static int buffers_make(buffers *b, ort_role role, int batch) {
    memset(b, 0, sizeof *b);
    unsigned s = 12345u;
    for (int j = 0; j < 2; j++) {
        size_t bytes = (size_t)batch * ort_role_input_bytes(role, j);
        if (!(b->in[j] = malloc(bytes))) return -1;
        int is_u8 = role == ORT_ROLE_UNET_U8 && j == 0;
        size_t n = is_u8 ? bytes : bytes / sizeof(float);
        for (size_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            if (is_u8) ((uint8_t *)b->in[j])[i] = (uint8_t)(s >> 24);
            else ((float *)b->in[j])[i] = (float)(s >> 8) / 16777216.0f * (j ? 2.0f : 1.0f) - (j ? 1.0f : 0.0f);
        }
    }
    return (b->out = malloc((size_t)batch * ort_role_output_bytes(role))) ? 0 : -1;
}

static void buffers_free(buffers *b) {
    free(b->in[0]);
    free(b->in[1]);
    free(b->out);
}

/* med/min/max ms of `repeats` runs (resident: model only) after 3 warm-ups. */
static int time_runs(ort_binding *b, int batch, int repeats, int resident, double st[3], ls_err *err) {
    double *t = calloc((size_t)repeats, sizeof *t);
    if (!t) return ls_fail(err, LS_ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < 3 + repeats && rc == 0; i++) {
        double t0 = bench_now_ms();
        rc = resident ? ort_binding_run_resident(b, batch, err) : ort_binding_run(b, batch, err);
        if (i >= 3) t[i - 3] = bench_now_ms() - t0;
    }
    if (rc == 0) {
        qsort(t, (size_t)repeats, sizeof *t, bench_cmp);
        st[0] = t[repeats / 2], st[1] = t[0], st[2] = t[repeats - 1];
    }
    free(t);
    return rc;
}

static cJSON *bench_setting(ort_runtime *rt, const options *o, const setting *s, ls_err *err) {
    const char *path = s->fp16 ? o->unet16 : o->unet;
    int max_b = 1;
    for (int i = 0; i < o->n_batches; i++) max_b = o->batches[i] > max_b ? o->batches[i] : max_b;
    ort_ep_cfg ep = ep_of(o, s->cuda_graph, -1);
    double load_ms;
    ort_model *m = load(rt, path, ORT_ROLE_UNET, &ep, s->uint8_io, &load_ms, err);
    if (!m) return NULL;
    buffers buf;
    ort_binding *b = NULL;
    cJSON *res = NULL;
    if (buffers_make(&buf, ort_model_role(m), max_b) != 0) {
        ls_fail(err, LS_ENOMEM, "out of memory");
        goto done;
    }
    if (!(b = ort_binding_create(m, max_b, buf.in, buf.out, err))) goto done;
    printf("%-32s load %.0f ms on %s, %s\n", s->label, load_ms, ort_model_ep_desc(m),
           ort_binding_on_device(b) ? "device tensors" : "host tensors");
    if (ort_binding_device_note(b)[0]) printf("  (no device tensors: %s)\n", ort_binding_device_note(b));
    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "setting", s->label);
    cJSON_AddStringToObject(res, "provider", ort_model_ep_desc(m));
    cJSON_AddNumberToObject(res, "load_ms", load_ms);
    cJSON_AddBoolToObject(res, "device_tensors", ort_binding_on_device(b));
    cJSON_AddStringToObject(res, "device_note", ort_binding_device_note(b));
    cJSON *rows = cJSON_AddArrayToObject(res, "batches");
    for (int i = 0; i < o->n_batches; i++) {
        int batch = o->batches[i];
        double model[3], copies[3];
        if (time_runs(b, batch, o->repeats, 1, model, err) != 0 || time_runs(b, batch, o->repeats, 0, copies, err) != 0) {
            cJSON_Delete(res);
            res = NULL;
            goto done;
        }
        printf("  batch %2d: model %7.2f ms (%6.0f frames/s)   with copies %7.2f ms (%6.0f frames/s)\n", batch,
               model[0], 1e3 * batch / model[0], copies[0], 1e3 * batch / copies[0]);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "batch", batch);
        cJSON_AddItemToObject(r, "model_ms", cJSON_CreateDoubleArray(model, 3));
        cJSON_AddItemToObject(r, "copies_ms", cJSON_CreateDoubleArray(copies, 3));
        cJSON_AddNumberToObject(r, "model_fps", 1e3 * batch / model[0]);
        cJSON_AddNumberToObject(r, "copies_fps", 1e3 * batch / copies[0]);
        cJSON_AddItemToArray(rows, r);
    }
    cJSON_AddNumberToObject(res, "gpu_bytes", (double)ort_model_device_bytes(m));
done:
    ort_binding_destroy(b);
    buffers_free(&buf);
    ort_model_destroy(m);
    return res;
}

/* Real inputs: the avatar's first n frames (prep_frame) with WAV's audio features. */
typedef struct {
    int n;
    float *image, *audio; /* [n][6][320][320], [n][32][16][16] */
    uint8_t *crops;       /* [n][328][328][3] */
} real_inputs;

static int real_inputs_make(ort_runtime *rt, const options *o, real_inputs *ri, ls_err *err) {
    memset(ri, 0, sizeof *ri);
    int rc = -1;
    avatar *av = avatar_load(o->avatar, err);
    ort_model *enc = NULL;
    pipe_worker *w = NULL;
    float *pcm = NULL, *mel = NULL, *feats = NULL;
    size_t n_samples = 0, L = 0;
    pipe_worker_cfg wc = {.max_batch = 1, .max_frame_w = 64, .max_frame_h = 64};
    ort_ep_cfg cpu = {.kind = ORT_EP_CPU};
    if (!av || !(enc = load(rt, o->encoder, ORT_ROLE_ENCODER, &cpu, 0, NULL, err)) ||
        !(w = pipe_worker_create(&wc, err)) || pipe_worker_bind(w, enc, NULL, err) != 0 ||
        !(pcm = pcm_load_file(o->audio, 16000 * 60, &n_samples, err)))
        goto done;
    if (!(mel = malloc(pipe_clip_mel_floats(n_samples) * sizeof *mel)) ||
        !(feats = malloc(pipe_clip_feat_floats(n_samples) * sizeof *feats))) {
        ls_fail(err, LS_ENOMEM, "out of memory");
        goto done;
    }
    if (pipe_clip_features(w, pcm, n_samples, mel, feats, &L, err) != 0) goto done;
    ri->n = (int)L < ACC_FRAMES ? (int)L : ACC_FRAMES;
    if (ri->n > av->frame_count) ri->n = av->frame_count;
    ri->image = malloc((size_t)ri->n * PREP_INPUT_FLOATS * sizeof(float));
    ri->audio = malloc((size_t)ri->n * ORT_UNET_AUDIO_ELEMS * sizeof(float));
    ri->crops = malloc((size_t)ri->n * PREP_CROP_BYTES);
    resize_scratch rs;
    if (!ri->image || !ri->audio || !ri->crops || resize_scratch_init(&rs, PREP_SCRATCH_SIDE, PREP_SCRATCH_SIDE, err) != 0) {
        ls_fail(err, LS_ENOMEM, "out of memory");
        goto done;
    }
    rc = 0;
    for (int i = 0; i < ri->n && rc == 0; i++)
        rc = prep_frame(avatar_frame(av, i), av->width, av->height, (size_t)av->width * 3, av->boxes[i],
                        ri->crops + (size_t)i * PREP_CROP_BYTES, ri->image + (size_t)i * PREP_INPUT_FLOATS, &rs,
                        err) ||
             feat_window(feats, L, (size_t)i, ri->audio + (size_t)i * ORT_UNET_AUDIO_ELEMS, err);
    resize_scratch_free(&rs);
done:
    free(pcm);
    free(mel);
    free(feats);
    pipe_worker_destroy(w);
    ort_model_destroy(enc);
    avatar_free(av);
    return rc;
}

/* Runs `path` on the real inputs with ep; out receives n outputs (float, or uint8 with u8). */
static int run_real(ort_runtime *rt, const char *path, const ort_ep_cfg *ep, int u8, const real_inputs *ri, void *out,
                    ls_err *err) {
    ort_model *m = load(rt, path, ORT_ROLE_UNET, ep, u8, NULL, err);
    void *in[2] = {u8 ? (void *)ri->crops : (void *)ri->image, ri->audio};
    ort_binding *b = m ? ort_binding_create(m, ri->n, in, out, err) : NULL;
    int rc = b ? ort_binding_run(b, ri->n, err) : -1;
    ort_binding_destroy(b);
    ort_model_destroy(m);
    return rc;
}

static cJSON *accuracy(ort_runtime *rt, const options *o, ls_err *err) {
    real_inputs ri;
    cJSON *res = NULL;
    size_t n_out = 0;
    float *cpu = NULL, *gpu = NULL, *half = NULL;
    uint8_t *u8 = NULL, *crop = malloc(PREP_CROP_BYTES);
    if (real_inputs_make(rt, o, &ri, err) != 0 || !crop) goto done;
    n_out = (size_t)ri.n * ORT_UNET_OUT_ELEMS;
    cpu = malloc(n_out * sizeof *cpu), gpu = malloc(n_out * sizeof *gpu), half = malloc(n_out * sizeof *half);
    u8 = malloc(n_out);
    if (!cpu || !gpu || !half || !u8) goto done;
    /* TF32 off, except through the classic options, which cannot say so (ORT's default then). */
    int classic = o->api == ORT_CUDA_API_CLASSIC;
    ort_ep_cfg on_cpu = {.kind = ORT_EP_CPU}, strict = ep_of(o, 0, classic ? -1 : 0);
    if (run_real(rt, o->unet, &on_cpu, 0, &ri, cpu, err) || run_real(rt, o->unet, &strict, 0, &ri, gpu, err) ||
        (o->uint8 && run_real(rt, o->unet, &strict, 1, &ri, u8, err)))
        goto done;
    double max_diff = 0;
    for (size_t i = 0; i < n_out; i++) max_diff = fmax(max_diff, fabs((double)cpu[i] - (double)gpu[i]));
    /* The uint8 path against the CPU float path converted by paste.c (crop[4:324, 4:324]). */
    long differ = 0;
    int worst = 0;
    for (int f = 0; f < ri.n && o->uint8; f++) {
        memcpy(crop, ri.crops + (size_t)f * PREP_CROP_BYTES, PREP_CROP_BYTES);
        paste_pred_to_crop(cpu + (size_t)f * ORT_UNET_OUT_ELEMS, crop);
        const uint8_t *g = u8 + (size_t)f * ORT_UNET_OUT_ELEMS;
        for (int y = 0; y < PREP_SIZE; y++)
            for (int x = 0; x < PREP_SIZE * 3; x++) {
                int c = crop[((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3 + (size_t)x];
                int d = abs(c - g[(size_t)y * PREP_SIZE * 3 + (size_t)x]);
                differ += d != 0;
                worst = d > worst ? d : worst;
            }
    }
    printf("accuracy on %d real frames: %s fp32 (TF32 %s) vs CPU max |diff| %.3g; uint8 I/O vs CPU: ", ri.n,
           ort_ep_kind_name(o->provider), classic ? "default" : "off", max_diff);
    if (o->uint8) printf("%ld of %zu bytes differ (max %d)\n", differ, n_out, worst);
    else printf("not run (--uint8 0)\n");
    res = cJSON_CreateObject();
    cJSON_AddNumberToObject(res, "frames", ri.n);
    cJSON_AddNumberToObject(res, "fp32_cuda_vs_cpu_max_abs", max_diff);
    if (o->uint8) {
        cJSON_AddNumberToObject(res, "u8_bytes_differing", (double)differ);
        cJSON_AddNumberToObject(res, "u8_bytes_total", (double)n_out);
        cJSON_AddNumberToObject(res, "u8_max_byte_diff", worst);
    }
    if (o->unet16) {
        if (run_real(rt, o->unet16, &strict, 0, &ri, half, err) != 0) {
            cJSON_Delete(res);
            res = NULL;
            goto done;
        }
        double se_all = 0, worst_psnr = INFINITY, max_abs = 0;
        for (int f = 0; f < ri.n; f++) {
            double se = 0;
            for (size_t i = 0; i < ORT_UNET_OUT_ELEMS; i++) {
                size_t k = (size_t)f * ORT_UNET_OUT_ELEMS + i;
                double d = 255.0 * ((double)half[k] - (double)gpu[k]);
                se += d * d;
                max_abs = fmax(max_abs, fabs(d));
            }
            se_all += se;
            double psnr = 10 * log10(255.0 * 255.0 / (se / ORT_UNET_OUT_ELEMS + 1e-30));
            worst_psnr = fmin(worst_psnr, psnr);
        }
        double psnr = 10 * log10(255.0 * 255.0 / (se_all / (double)n_out + 1e-30));
        printf("fp16 vs fp32 (x255): PSNR %.2f dB over %d frames, worst frame %.2f dB, max |diff| %.2f\n", psnr,
               ri.n, worst_psnr, max_abs);
        cJSON_AddNumberToObject(res, "fp16_psnr_db", psnr);
        cJSON_AddNumberToObject(res, "fp16_worst_frame_psnr_db", worst_psnr);
        cJSON_AddNumberToObject(res, "fp16_max_abs_x255", max_abs);
    }
done:
    free(cpu), free(gpu), free(half), free(u8), free(crop);
    free(ri.image), free(ri.audio), free(ri.crops);
    return res;
}

/* One probe step (see the top comment): 0 when it loaded and ran. */
static int probe(ort_runtime *rt, const options *o, ls_err *err) {
    const char *step = o->probe;
    int enc = !strcmp(step, "encoder") || !strcmp(step, "both");
    int unet = strcmp(step, "encoder") != 0;
    int u8 = !strcmp(step, "unet_u8") || !strcmp(step, "both") || !strcmp(step, "graphs");
    ort_ep_cfg ep = ep_of(o, !strcmp(step, "graphs"), -1);
    ort_model *me = NULL, *mu = NULL;
    ort_binding *be = NULL, *bu = NULL;
    buffers bufu = {0};
    static float mel[3 * ORT_ENC_MEL_ELEMS], feat[3 * ORT_ENC_FEAT_ELEMS];
    void *mel_in[1] = {mel};
    int rc = -1;
    if (!enc && !unet) return ls_fail(err, LS_EINVAL, "unknown probe step '%s'", step);
    if (enc && (!o->encoder || !(me = load(rt, o->encoder, ORT_ROLE_ENCODER, &ep, 0, NULL, err)) ||
                !(be = ort_binding_create(me, 3, mel_in, feat, err)) || ort_binding_run(be, 3, err) != 0))
        goto done;
    if (enc) printf("probe %s: encoder ran on %s (%s tensors)\n", step, ort_model_ep_desc(me),
                    ort_binding_on_device(be) ? "device" : "host");
    if (unet) {
        if (!(mu = load(rt, o->unet, ORT_ROLE_UNET, &ep, u8, NULL, err)) ||
            buffers_make(&bufu, ort_model_role(mu), 2) != 0 || !(bu = ort_binding_create(mu, 2, bufu.in, bufu.out, err)))
            goto done;
        for (int i = 0; i < 4; i++)
            if (ort_binding_run(bu, 2, err) != 0 || ort_binding_run_resident(bu, 2, err) != 0) goto done;
        printf("probe %s: UNet ran on %s (%s tensors%s%s)\n", step, ort_model_ep_desc(mu),
               ort_binding_on_device(bu) ? "device" : "host", ort_binding_device_note(bu)[0] ? ": " : "",
               ort_binding_device_note(bu));
    }
    if (enc && ort_binding_run(be, 3, err) != 0) goto done; /* the first model still runs */
    rc = 0;
done:
    ort_binding_destroy(bu);
    ort_binding_destroy(be);
    buffers_free(&bufu);
    ort_model_destroy(mu);
    ort_model_destroy(me);
    return rc;
}

/* Writes the results so far to `path` (replacing what an earlier part wrote). */
static int write_json(const cJSON *root, const char *path) {
    char *text = cJSON_Print(root);
    FILE *f = fopen(path, "w");
    int rc = f && text && fputs(text, f) >= 0 ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    free(text);
    return rc;
}

static int parse_batches(const char *s, options *o) {
    o->n_batches = 0;
    for (char *end; *s && o->n_batches < MAX_BATCHES; s = *end ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > PIPE_MAX_BATCH) return -1;
        o->batches[o->n_batches++] = (int)v;
    }
    return o->n_batches ? 0 : -1;
}

int main(int argc, char **argv) {
    options o = {.repeats = 20, .n_batches = 3, .batches = {1, 8, 25}, .provider = ORT_EP_CUDA,
                 .uint8 = 1, .graphs = 1};
    setvbuf(stdout, NULL, _IOLBF, 0); /* into a file on the GPU machine: a crash keeps what was printed */
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--unet")) o.unet = v;
        else if (!strcmp(k, "--unet-fp16")) o.unet16 = v;
        else if (!strcmp(k, "--avatar")) o.avatar = v;
        else if (!strcmp(k, "--encoder")) o.encoder = v;
        else if (!strcmp(k, "--audio")) o.audio = v;
        else if (!strcmp(k, "--json")) o.json = v;
        else if (!strcmp(k, "--device")) o.device = atoi(v);
        else if (!strcmp(k, "--repeats")) o.repeats = atoi(v);
        else if (!strcmp(k, "--batches") && parse_batches(v, &o) == 0) continue;
        else if (!strcmp(k, "--provider") && ort_ep_kind_parse(v, &o.provider) == 0) continue;
        else if (!strcmp(k, "--api") && ort_cuda_api_parse(v, &o.api) == 0) continue;
        else if (!strcmp(k, "--host-tensors")) o.host_tensors = atoi(v);
        else if (!strcmp(k, "--probe")) o.probe = v;
        else if (!strcmp(k, "--uint8")) o.uint8 = atoi(v);
        else if (!strcmp(k, "--graphs")) o.graphs = atoi(v);
        else {
            fprintf(stderr, "bench_gpu: bad option %s %s (see the comment at the top of bench/bench_gpu.c)\n", k, v);
            return 2;
        }
    }
    if (!o.unet || o.repeats < 1 || (o.avatar && (!o.encoder || !o.audio))) {
        fprintf(stderr, "usage: bench_gpu --unet FP32.onnx [--unet-fp16 FP16.onnx] [--avatar DIR --encoder ENC "
                        "--audio WAV] [--device N] [--batches 1,8,25] [--repeats N] [--provider cuda|cpu] "
                        "[--json OUT]\n");
        return 2;
    }
    ls_err err = {0};
    ort_runtime *rt = ort_runtime_create(NULL, &err);
    if (!rt) {
        fprintf(stderr, "bench_gpu: %s\n", err.msg);
        return 1;
    }
    if (o.probe) {
        int prc = probe(rt, &o, &err);
        if (prc != 0) printf("probe %s: FAILED: %s\n", o.probe, err.msg);
        ort_runtime_destroy(rt);
        return prc ? 1 : 0;
    }
    const setting settings[] = {
        {"fp32, float I/O", 0, 0, 0},           {"fp16, float I/O", 1, 0, 0},
        {"fp32, uint8 I/O", 0, 1, 0},           {"fp16, uint8 I/O", 1, 1, 0},
        {"fp32, uint8 I/O, CUDA graphs", 0, 1, 1}, {"fp16, uint8 I/O, CUDA graphs", 1, 1, 1},
    };
    cJSON *root = cJSON_CreateObject(), *runs = cJSON_AddArrayToObject(root, "settings");
    cJSON_AddStringToObject(root, "onnxruntime", ort_runtime_version(rt));
    int rc = 0;
    /* Pass 0: the settings without graphs; pass 1: the accuracy; pass 2: the settings with graphs. */
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1 && o.avatar) {
            cJSON *acc = accuracy(rt, &o, &err);
            if (acc) cJSON_AddItemToObject(root, "accuracy", acc);
            else {
                printf("accuracy: FAILED: %s\n", err.msg);
                rc = 1;
            }
        }
        for (size_t i = 0; pass != 1 && i < sizeof settings / sizeof *settings; i++) {
            const setting *s = &settings[i];
            if (s->cuda_graph != (pass == 2) || (s->fp16 && !o.unet16) || (s->uint8_io && !o.uint8) ||
                (s->cuda_graph && (o.provider != ORT_EP_CUDA || !o.graphs)))
                continue;
            cJSON *r = bench_setting(rt, &o, s, &err);
            if (!r) {
                /* One setting failing (e.g. CUDA graphs refused) must not hide the others. */
                printf("%-32s FAILED: %s\n", s->label, err.msg);
                r = cJSON_CreateObject();
                cJSON_AddStringToObject(r, "setting", s->label);
                cJSON_AddStringToObject(r, "error", err.msg);
                rc = 1;
            }
            cJSON_AddItemToArray(runs, r);
            if (o.json && write_json(root, o.json) != 0) rc = 1;
        }
        if (pass == 1 && o.json && write_json(root, o.json) != 0) rc = 1; /* the accuracy */
    }
    cJSON_Delete(root);
    ort_runtime_destroy(rt);
    return rc;
}
