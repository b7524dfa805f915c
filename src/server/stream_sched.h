/* stream_sched.h - one scheduler per UNet model: forms UNet batches across live sessions.
 *
 * Sessions submit jobs (one video frame each: avatar frame, face box, its 32x16x16 audio block, a
 * destination frame buffer, a cross-fade weight). Worker threads, each owning a pipe_worker bound
 * to the UNet (worker.h: its unet_image/unet_audio/unet_output/crop buffers), take up to
 * max_batch queued jobs, oldest first and from any session, as soon as max_batch are queued or
 * the oldest has waited max_wait_us; then prepare (prep_frame + the job's block), run the UNet
 * once, composite each output into its job's destination (paste_frame; then the cross-fade) and
 * call the job's done callback (from the worker thread, no scheduler lock held).
 * Pipelined (cfg.pipeline, the default on a GPU): each worker runs the UNet on a runner thread
 * (unet_runner.h) and prepares the next batch from whatever is queued while one runs, then
 * composites the previous batch while the next runs; so batches grow with the queue and the device
 * does not wait for the CPU stages. Same frames either way.
 * Audio-encoder runs are batched across sessions too, but not here: by the encoder batcher
 * (stream_encb.h), on the callers' own threads (group commit, no worker threads).
 *
 * Admission: sched_admit counts a live session against the scheduler's max_sessions and the
 * shared sched_limits total; beyond either it fails with LS_ENOMEM (RESOURCE_EXHAUSTED).
 * Memory: sched_create allocates the workers and threads; submitting and running allocate nothing.
 * Jobs belong to their session; sched_cancel_owner takes an owner's queued jobs back (those being
 * run finish and call done). Destroy only after every admitted session has left. */
#ifndef LS_SERVER_STREAM_SCHED_H
#define LS_SERVER_STREAM_SCHED_H

#include <pthread.h>
#include <stdint.h>

#include "avatar/avatar.h"
#include "common/err.h"
#include "infer/ort_model.h"

/* Shared by all schedulers: the total live sessions allowed. */
typedef struct sched_limits {
    int max_total;
    int live;           /* guarded by mu */
    pthread_mutex_t mu;
} sched_limits;

int sched_limits_init(sched_limits *l, int max_total);
void sched_limits_destroy(sched_limits *l);

#define SCHED_MAX_WORKERS 16 /* threads per scheduler (stream.workers) */

typedef struct sched_cfg {
    int workers;            /* threads, 1..16 */
    int max_batch;          /* 1..PIPE_MAX_BATCH */
    int max_wait_us;        /* 0..1,000,000: how long a partial batch waits for more jobs */
    int max_sessions;       /* live sessions on this model */
    int max_frame_w, max_frame_h; /* largest avatar frame */
    int pipeline;           /* 1: pipelined workers (above); each holds two slot sets */
    const int *cpus;        /* NULL, or the CPU each worker thread starts pinned to (`workers` of
                               them; borrowed during sched_create only) */
} sched_cfg;

typedef struct sched_job sched_job;
typedef void (*sched_done_fn)(sched_job *job, int rc, const ls_err *err);

struct sched_job {
    sched_job *next;        /* queue link (scheduler's) */
    void *owner;            /* the session */
    const avatar *av;
    int avatar_frame;
    int fade_q8;            /* 256: the generated face as is; 0..255: blended toward the original */
    float *audio;           /* ORT_UNET_AUDIO_ELEMS floats (the job's, read during the run) */
    uint8_t *dst;           /* av->width x av->height BGR, stride width*3: the finished frame */
    uint64_t enqueued_ns;
    sched_done_fn done;
};

typedef struct sched_stats {
    uint64_t runs, items;   /* UNet runs and frames they produced */
    uint64_t overlapped_runs; /* runs prepared while another ran (pipelined workers) */
    uint64_t max_batch_seen;
    uint64_t queue_wait_ns; /* summed over items: submit -> taken by a worker (pipelined workers
                               take a batch while the previous one still runs) */
    uint64_t run_ns;
    int sessions, queued;
} sched_stats;

typedef struct sched sched;

/* unet: borrowed, must outlive the scheduler. Starts the worker threads. */
sched *sched_create(ort_model *unet, const sched_cfg *cfg, sched_limits *limits, ls_err *err);
void sched_destroy(sched *s); /* stops and joins the workers; NULL is fine */

int sched_admit(sched *s, ls_err *err);
void sched_leave(sched *s);

/* Queues a job (never blocks, never fails: the session bounds its own jobs). */
void sched_submit(sched *s, sched_job *job);
/* Removes the owner's queued (not yet running) jobs, calling fn(job, ctx) for each under the
 * scheduler's lock (fn must only do bookkeeping); returns how many. done is not called. */
int sched_cancel_owner(sched *s, void *owner, void (*fn)(sched_job *job, void *ctx), void *ctx);

void sched_stats_get(sched *s, sched_stats *out);
int sched_pipelined(const sched *s); /* 1 when its workers are pipelined (cfg.pipeline) */
int sched_max_frame_w(const sched *s);
int sched_max_frame_h(const sched *s);

#endif
