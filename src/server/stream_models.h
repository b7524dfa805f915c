/* stream_models.h - the live-session schedulers of lipsyncd (app_stream_): one stream_sched per
 * UNet model in use by live sessions and one encoder batcher (stream_encb.h) per audio-encoder
 * model in use, each shared by every session of that model, plus the total session limit
 * (config `stream.*`).
 *
 * A scheduler or batcher is created when the first session of its model arrives and destroyed
 * when the last one leaves: the registry lease a session holds keeps the model alive exactly that
 * long, so neither outlives the ONNX session it runs. Batchers hold 4 x PIPE_ENC_BATCH windows per
 * run and wait stream.encoder_max_wait_us for company. Threads: all functions are thread-safe.
 * Memory: the tables are allocated at create; a scheduler (threads, workers) or batcher (binding,
 * buffers) per model in use. Errors: LS_ENOMEM (table full or out of memory), the scheduler's or
 * batcher's own. */
#ifndef LS_SRV_STREAM_MODELS_H
#define LS_SRV_STREAM_MODELS_H

#include "server/config.h"
#include "server/stream_encb.h"
#include "server/cpu_plan.h"
#include "server/stream_sched.h"

#define APP_STREAM_ENCB_CAPACITY (4 * PIPE_ENC_BATCH)

typedef struct app_stream app_stream;

/* plan (borrowed, outlives the table): each scheduler's threads take their CPUs from it.
 * pipeline: the schedulers' workers are pipelined (stream_sched.h; capacity.pipeline resolved). */
app_stream *app_stream_create(const srv_config *cfg, srv_cpu_plan *plan, int pipeline, ls_err *err);
void app_stream_destroy(app_stream *m);   /* after every session left */

/* The scheduler of `unet` (created on first use), counted as one more user. */
sched *app_stream_acquire(app_stream *m, ort_model *unet, ls_err *err);
void app_stream_release(app_stream *m, sched *s);

/* The batcher of `encoder` (created on first use), counted as one more user. */
encb *app_stream_acquire_encoder(app_stream *m, ort_model *encoder, ls_err *err);
void app_stream_release_encoder(app_stream *m, encb *b);

#endif
