/* unet_runner.h - runs a worker's UNet on a thread of its own, so that the calling thread can
 * prepare the next batch and composite the previous one while the model computes (render.h's
 * pipelined loop).
 *
 * One run at a time: pipe_runner_start hands the thread a binding and a batch size and returns at
 * once; pipe_runner_wait blocks until that run ended and reports its result and duration. Between
 * the two the binding's buffers belong to the runner: the caller must not touch them. start and
 * wait come from one thread (the worker's owner). Memory: create allocates the runner and starts
 * its thread; start and wait allocate nothing. Errors: what ort_binding_run reported. */
#ifndef LS_PIPELINE_UNET_RUNNER_H
#define LS_PIPELINE_UNET_RUNNER_H

#include <stdint.h>

#include "common/err.h"
#include "infer/ort_model.h"

typedef struct pipe_runner pipe_runner;

pipe_runner *pipe_runner_create(ls_err *err);
void pipe_runner_destroy(pipe_runner *r); /* waits for a run in progress; NULL is fine */

/* Starts ort_binding_run(b, batch) on the runner's thread. A run must not be in progress. */
void pipe_runner_start(pipe_runner *r, ort_binding *b, int batch);

/* Waits for the started run: 0, or -1 with err filled. *run_ns (optional) gets the run's own time.
 * Returns 0 at once when nothing was started. */
int pipe_runner_wait(pipe_runner *r, uint64_t *run_ns, ls_err *err);

#endif
