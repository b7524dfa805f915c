/* worker.c - creation and model binding of the per-worker context (see worker.h). */
#include "pipeline/worker.h"

#include <stdlib.h>

#include "image/prepare.h"
#include "pipeline/unet_runner.h"

static size_t worker_slots(const pipe_worker_cfg *c) { return (size_t)c->max_batch * (c->pipeline ? 2 : 1); }

static size_t worker_arena_size(const pipe_worker_cfg *c) {
    size_t b = worker_slots(c), floats;
    floats = b * (ORT_UNET_IMG_ELEMS + ORT_UNET_AUDIO_ELEMS + ORT_UNET_OUT_ELEMS) +
             (size_t)PIPE_ENC_BATCH * (ORT_ENC_MEL_ELEMS + ORT_ENC_FEAT_ELEMS);
    return floats * sizeof(float) + b * PREP_CROP_BYTES +
           (size_t)c->max_frame_w * c->max_frame_h * 3 + 8 * 64; /* + alignment slack */
}

pipe_worker *pipe_worker_create(const pipe_worker_cfg *cfg, ls_err *err) {
    if (cfg->max_batch < 1 || cfg->max_batch > PIPE_MAX_BATCH) {
        ls_fail(err, LS_EINVAL, "batch size %d outside 1..%d", cfg->max_batch, PIPE_MAX_BATCH);
        return NULL;
    }
    if (cfg->max_frame_w < 1 || cfg->max_frame_h < 1 || cfg->max_frame_w > RESIZE_MAX_SIDE ||
        cfg->max_frame_h > RESIZE_MAX_SIDE) {
        ls_fail(err, LS_EINVAL, "frame size %dx%d out of range", cfg->max_frame_w, cfg->max_frame_h);
        return NULL;
    }
    pipe_worker *w = calloc(1, sizeof *w);
    if (!w) { ls_fail(err, LS_ENOMEM, "out of memory for a worker"); return NULL; }
    w->cfg = *cfg;
    if (!w->cfg.jpeg_quality) w->cfg.jpeg_quality = JPEG_DEFAULT_QUALITY;
    size_t b = worker_slots(cfg);
    if (arena_init(&w->arena, worker_arena_size(cfg)) != 0) {
        ls_fail(err, LS_ENOMEM, "cannot allocate %zu bytes for a worker", worker_arena_size(cfg));
        goto fail;
    }
    w->unet_image = arena_array(&w->arena, float, b * ORT_UNET_IMG_ELEMS);
    w->unet_audio = arena_array(&w->arena, float, b * ORT_UNET_AUDIO_ELEMS);
    w->unet_output = arena_array(&w->arena, float, b * ORT_UNET_OUT_ELEMS);
    w->crops = arena_array(&w->arena, uint8_t, b * PREP_CROP_BYTES);
    w->enc_mel = arena_array(&w->arena, float, (size_t)PIPE_ENC_BATCH * ORT_ENC_MEL_ELEMS);
    w->enc_feat = arena_array(&w->arena, float, (size_t)PIPE_ENC_BATCH * ORT_ENC_FEAT_ELEMS);
    w->frame = arena_array(&w->arena, uint8_t, (size_t)cfg->max_frame_w * cfg->max_frame_h * 3);
    if (!w->frame) { ls_fail(err, LS_EINTERNAL, "worker arena sized too small"); goto fail; }
    /* The resize goes both ways: frame box -> 328 crop (prep) and 328 crop -> box (paste). */
    int side = cfg->max_frame_w > cfg->max_frame_h ? cfg->max_frame_w : cfg->max_frame_h;
    if (side < PREP_CROP) side = PREP_CROP;
    if (resize_scratch_init(&w->resize, side, side, err) != 0) goto fail;
    if (!(w->jpeg = jpeg_enc_create(cfg->max_frame_w, cfg->max_frame_h, w->cfg.jpeg_quality, err)))
        goto fail;
    if (!(w->mel = mel_create(err))) goto fail;
    if (cfg->pipeline && !(w->runner = pipe_runner_create(err))) goto fail;
    return w;
fail:
    pipe_worker_destroy(w);
    return NULL;
}

void pipe_worker_destroy(pipe_worker *w) {
    if (!w) return;
    pipe_runner_destroy(w->runner); /* first: it may still be running a binding */
    ort_binding_destroy(w->enc_binding);
    ort_binding_destroy(w->unet_binding);
    ort_binding_destroy(w->unet_binding2);
    mel_free(w->mel);
    jpeg_enc_destroy(w->jpeg);
    resize_scratch_free(&w->resize);
    arena_free(&w->arena);
    free(w);
}

/* A binding over slot set `set` (slots set * max_batch ...). A uint8 UNet reads the crops
 * themselves and writes bytes where the floats would go (unet_io.h). */
static ort_binding *bind_slot_set(pipe_worker *w, ort_model *unet, int set, ls_err *err) {
    size_t s0 = (size_t)set * (size_t)w->cfg.max_batch;
    int u8 = ort_model_role(unet) == ORT_ROLE_UNET_U8;
    void *in[2] = {u8 ? (void *)(w->crops + s0 * PREP_CROP_BYTES) : (void *)(w->unet_image + s0 * ORT_UNET_IMG_ELEMS),
                   w->unet_audio + s0 * ORT_UNET_AUDIO_ELEMS};
    void *out = u8 ? (void *)((uint8_t *)w->unet_output + s0 * PREP_SIZE * PREP_SIZE * 3)
                   : (void *)(w->unet_output + s0 * ORT_UNET_OUT_ELEMS);
    return ort_binding_create(unet, w->cfg.max_batch, in, out, err);
}

int pipe_worker_bind(pipe_worker *w, ort_model *encoder, ort_model *unet, ls_err *err) {
    if (encoder != w->encoder) {
        ort_binding_destroy(w->enc_binding);
        w->enc_binding = NULL;
        w->encoder = NULL;
        if (encoder) {
            void *in[1] = {w->enc_mel};
            if (!(w->enc_binding = ort_binding_create(encoder, PIPE_ENC_BATCH, in, w->enc_feat, err)))
                return -1;
            w->encoder = encoder;
        }
    }
    if (unet != w->unet) {
        ort_binding_destroy(w->unet_binding);
        ort_binding_destroy(w->unet_binding2);
        w->unet_binding = w->unet_binding2 = NULL;
        w->unet = NULL;
        if (unet) {
            if (!(w->unet_binding = bind_slot_set(w, unet, 0, err))) return -1;
            if (w->cfg.pipeline && !(w->unet_binding2 = bind_slot_set(w, unet, 1, err))) {
                ort_binding_destroy(w->unet_binding);
                w->unet_binding = NULL;
                return -1;
            }
            w->unet = unet;
        }
    }
    return 0;
}

int pipe_worker_slots(const pipe_worker *w) { return (int)worker_slots(&w->cfg); }

ort_binding *pipe_worker_unet_binding(const pipe_worker *w, int set) {
    return set ? w->unet_binding2 : w->unet_binding;
}

size_t pipe_worker_bytes(const pipe_worker *w) {
    return sizeof *w + w->arena.cap;
}
