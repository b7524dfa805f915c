/* stream_encb.h - one audio-encoder batcher per encoder model: live sessions' encoder windows go
 * through shared runs (group commit), as their UNet frames go through stream_sched.h.
 *
 * encb_run blocks its caller until its windows are encoded. The request (pointers and a count,
 * on the caller's stack) joins a FIFO; when no run is in progress the caller becomes the leader:
 * it waits up to max_wait_us for more requests (only while other attached callers exist, and no
 * longer than until every attached caller has one queued or the capacity is full), takes whole
 * queued requests, oldest first, up to the capacity in windows, runs the encoder ONCE on the
 * batcher's own binding, copies each request's rows out and wakes their callers. A request still
 * queued after that run is led by one of its own callers next: no thread hop, and a lone session
 * pays no wait. A caller returns only once its request has left the queue and its run is over,
 * so nothing on its stack is referenced after it returns (cancel and close need no clean-up).
 * Every request of a failed run gets that run's error.
 *
 * Each window is ORT_ENC_MEL_ELEMS floats ([1][80][16]), each row ORT_ENC_FEAT_ELEMS (512).
 * A request of more than `capacity` windows is run in successive capacity-sized parts.
 * Memory: encb_create allocates the binding and its buffers (capacity windows); a run allocates
 * nothing in our code. Threads: all functions are thread-safe. Destroy only when no call can
 * still be in encb_run (after every attached session detached).
 * Errors: LS_EINVAL (bad arguments), LS_EMODEL (the encoder run), LS_ENOMEM (create). */
#ifndef LS_SERVER_STREAM_ENCB_H
#define LS_SERVER_STREAM_ENCB_H

#include <stdint.h>

#include "common/err.h"
#include "infer/ort_model.h"

#define ENCB_MAX_CAPACITY 4096

typedef struct encb encb;

typedef struct encb_stats {
    uint64_t runs;        /* encoder runs that succeeded */
    uint64_t windows;     /* windows they encoded */
    uint64_t requests;    /* request parts they carried */
    uint64_t shared_runs; /* runs that carried more than one request: a caller has one request at
                             a time, so these are runs shared by several callers (sessions) */
    uint64_t failed_runs;
    uint64_t max_windows; /* largest run */
    int attached;
} encb_stats;

/* encoder: borrowed, must outlive the batcher. capacity: windows per run, 1..ENCB_MAX_CAPACITY.
 * max_wait_us: 0..1,000,000 (0: only requests already queued when the leader starts join it). */
encb *encb_create(ort_model *encoder, int capacity, int max_wait_us, ls_err *err);
void encb_destroy(encb *b); /* NULL is fine */

/* A caller that will call encb_run (a session) counts itself while it lives: the leader waits for
 * other callers only while some are attached. Detach once per attach. */
void encb_attach(encb *b);
void encb_detach(encb *b);

/* Encodes n windows (n >= 0) into out (n rows). Blocks; see above. Returns 0, or -1 with err. */
int encb_run(encb *b, const float *windows, int n, float *out, ls_err *err);

void encb_stats_get(encb *b, encb_stats *out);
ort_model *encb_model(const encb *b);

#endif
