/* worker.h - the per-worker context: every buffer one worker needs to turn a clip's audio and an
 * avatar's frames into finished frames, carved once from one arena at creation.
 *
 * Pipelined workers (cfg.pipeline) hold two sets of max_batch UNet slots, each with its own
 * binding, and a runner thread (unet_runner.h): render.h then runs the UNet on one set while the
 * owner prepares the next batch and composites the previous one in the other. Slot b of set s is
 * slot s * max_batch + b of the buffers below (unet_io.h takes slot numbers in 0..pipe_worker_slots).
 *
 * A worker belongs to one thread at a time. pipe_worker_create allocates (arena, resize tables,
 * JPEG encoder, mel context); nothing else in src/pipeline allocates, except pipe_worker_bind when
 * the models change (it creates ORT tensor views over the worker's buffers). Models are borrowed:
 * they must outlive the worker's use of them (unbind or destroy the worker first). */
#ifndef LS_PIPELINE_WORKER_H
#define LS_PIPELINE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "audio/mel.h"
#include "common/arena.h"
#include "common/err.h"
#include "image/jpeg.h"
#include "image/resize.h"
#include "infer/ort_model.h"

#define PIPE_MAX_BATCH 32      /* UNet items per run */
#define PIPE_ENC_BATCH 32      /* encoder windows per run */

typedef struct pipe_worker_cfg {
    int max_batch;               /* UNet batch, 1..PIPE_MAX_BATCH */
    int max_frame_w, max_frame_h;/* largest avatar frame this worker composites */
    int jpeg_quality;            /* 1..100; 0 = JPEG_DEFAULT_QUALITY */
    int pipeline;                /* 1: two slot sets and a UNet runner thread (see above) */
} pipe_worker_cfg;

struct pipe_runner;

typedef struct pipe_worker {
    pipe_worker_cfg cfg;
    ls_arena arena;
    /* UNet slots: `slots` = max_batch, or 2 x max_batch when pipelined. */
    float *unet_image;    /* [slots][6][320][320] */
    float *unet_audio;    /* [slots][32][16][16] */
    float *unet_output;   /* [slots][3][320][320]; a uint8 UNet writes [slots][320][320][3]
                             bytes here instead, and reads `crops` instead of unet_image (unet_io.h) */
    uint8_t *crops;       /* [slots][328][328][3], kept from prep for paste-back */
    float *enc_mel;       /* [PIPE_ENC_BATCH][1][80][16] */
    float *enc_feat;      /* [PIPE_ENC_BATCH][512] */
    uint8_t *frame;       /* one composited frame, max_frame_h rows of 3 * max_frame_w bytes */
    resize_scratch resize;
    jpeg_enc *jpeg;
    mel_ctx *mel;
    ort_model *encoder, *unet;           /* the models the bindings view (borrowed) */
    ort_binding *enc_binding, *unet_binding;
    ort_binding *unet_binding2;          /* pipelined: the second slot set's */
    struct pipe_runner *runner;          /* pipelined: runs the UNet beside the owner */
} pipe_worker;

pipe_worker *pipe_worker_create(const pipe_worker_cfg *cfg, ls_err *err);
void pipe_worker_destroy(pipe_worker *w); /* NULL is fine */

/* Points the worker at an encoder and a UNet (either may be NULL to leave it unbound). Rebinds only
 * when a model differs from the current one, so calling it per request with the same models costs
 * nothing. Errors: LS_EMODEL / LS_ENOMEM from ORT. */
int pipe_worker_bind(pipe_worker *w, ort_model *encoder, ort_model *unet, ls_err *err);

/* Bytes of the worker's arena (the frame buffers; resize tables and the JPEG buffer are small
 * beside it and not counted), for memory accounting. */
size_t pipe_worker_bytes(const pipe_worker *w);

/* UNet slots of the worker: max_batch, twice that when pipelined. */
int pipe_worker_slots(const pipe_worker *w);

/* The binding of slot set `set` (0, or 1 when pipelined). */
ort_binding *pipe_worker_unet_binding(const pipe_worker *w, int set);

#endif
