/* unet_runner.c - the UNet on its own thread, one run at a time (see unet_runner.h). */
#include "pipeline/unet_runner.h"

#include <pthread.h>
#include <stdlib.h>

#include "pipeline/render.h"

struct pipe_runner {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* state changed (either direction) */
    pthread_t tid;
    int started, stop;
    int pending, done;        /* a run was handed over / has ended */
    ort_binding *b;
    int batch, rc;
    uint64_t run_ns;
    ls_err err;
};

static void *runner_main(void *arg) {
    pipe_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->pending && !r->stop) pthread_cond_wait(&r->cv, &r->mu);
        if (!r->pending) break; /* stop, nothing left to run */
        r->pending = 0;
        ort_binding *b = r->b;
        int batch = r->batch;
        pthread_mutex_unlock(&r->mu);
        ls_err err = {0};
        uint64_t t0 = pipe_now_ns();
        int rc = ort_binding_run(b, batch, &err);
        uint64_t t1 = pipe_now_ns();
        pthread_mutex_lock(&r->mu);
        r->rc = rc;
        r->err = err;
        r->run_ns = t1 - t0;
        r->done = 1;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

pipe_runner *pipe_runner_create(ls_err *err) {
    pipe_runner *r = calloc(1, sizeof *r);
    if (!r) return ls_fail(err, LS_ENOMEM, "out of memory for a UNet runner"), NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->tid, NULL, runner_main, r) != 0) {
        pipe_runner_destroy(r);
        return ls_fail(err, LS_EINTERNAL, "cannot start the UNet runner thread"), NULL;
    }
    r->started = 1;
    return r;
}

void pipe_runner_destroy(pipe_runner *r) {
    if (!r) return;
    if (r->started) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->tid, NULL);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void pipe_runner_start(pipe_runner *r, ort_binding *b, int batch) {
    pthread_mutex_lock(&r->mu);
    r->b = b;
    r->batch = batch;
    r->pending = 1;
    r->done = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int pipe_runner_wait(pipe_runner *r, uint64_t *run_ns, ls_err *err) {
    pthread_mutex_lock(&r->mu);
    if (!r->b) { /* nothing started */
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    while (!r->done) pthread_cond_wait(&r->cv, &r->mu);
    int rc = r->rc;
    if (rc != 0 && err) *err = r->err;
    if (run_ns) *run_ns = r->run_ns;
    r->b = NULL;
    r->done = 0;
    pthread_mutex_unlock(&r->mu);
    return rc;
}
