/* stream_models.h - the live-session schedulers of lipsyncd (app_stream_): one stream_sched per
 * UNet model in use by live sessions, shared by every session of that model, plus the total
 * session limit (config `stream.*`).
 *
 * A scheduler is created when the first session of its model arrives and destroyed when the last
 * one leaves: the registry lease a session holds keeps the model alive exactly that long, so a
 * scheduler never outlives the ONNX session it runs. Threads: all functions are thread-safe.
 * Memory: the table is allocated at create; a scheduler (threads, workers) per model in use.
 * Errors: LS_ENOMEM (table full or out of memory), the scheduler's own. */
#ifndef LS_SRV_STREAM_MODELS_H
#define LS_SRV_STREAM_MODELS_H

#include "server/config.h"
#include "server/cpu_plan.h"
#include "server/stream_sched.h"

typedef struct app_stream app_stream;

/* plan (borrowed, outlives the table): each scheduler's threads take their CPUs from it. */
app_stream *app_stream_create(const srv_config *cfg, srv_cpu_plan *plan, ls_err *err);
void app_stream_destroy(app_stream *m);   /* after every session left */

/* The scheduler of `unet` (created on first use), counted as one more user. */
sched *app_stream_acquire(app_stream *m, ort_model *unet, ls_err *err);
void app_stream_release(app_stream *m, sched *s);

#endif
