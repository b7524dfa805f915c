/* stream_encb.c - the audio-encoder batcher: group commit of live sessions' encoder windows
 * (stream_encb.h). Requests live on their callers' stacks; the queue links them. */
#include "server/stream_encb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { REQ_QUEUED = 0, REQ_RUNNING, REQ_DONE };

typedef struct encb_req {
    struct encb_req *next;
    const float *windows;
    float *out;
    int n;
    int state;
    int rc;
    ls_err *err;             /* the caller's (may be NULL) */
} encb_req;

struct encb {
    ort_model *enc;
    ort_binding *bind;
    float *in, *out;         /* capacity windows / rows, the binding's tensors */
    int cap, max_wait_us;
    pthread_mutex_t mu;
    pthread_cond_t arrived;  /* a request joined the queue (for a leader that waits) */
    pthread_cond_t ran;      /* a run finished, or leadership is free */
    encb_req *head, *tail;
    int queued_reqs, queued_windows;
    int leading;             /* a leader is collecting or running */
    int attached;
    encb_stats st;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

encb *encb_create(ort_model *encoder, int capacity, int max_wait_us, ls_err *err) {
    if (!encoder || capacity < 1 || capacity > ENCB_MAX_CAPACITY || max_wait_us < 0 || max_wait_us > 1000000) {
        ls_fail(err, LS_EINVAL, "encoder batcher: need an encoder, a capacity of 1..%d windows and a wait of "
                "0..1,000,000 us", ENCB_MAX_CAPACITY);
        return NULL;
    }
    encb *b = calloc(1, sizeof *b);
    if (!b) return ls_fail(err, LS_ENOMEM, "encoder batcher: out of memory"), NULL;
    b->enc = encoder;
    b->cap = capacity;
    b->max_wait_us = max_wait_us;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->arrived, &ca);
    pthread_cond_init(&b->ran, NULL);
    pthread_condattr_destroy(&ca);
    b->in = malloc((size_t)capacity * ORT_ENC_MEL_ELEMS * sizeof(float));
    b->out = malloc((size_t)capacity * ORT_ENC_FEAT_ELEMS * sizeof(float));
    if (!b->in || !b->out) {
        ls_fail(err, LS_ENOMEM, "encoder batcher: out of memory for %d windows", capacity);
        encb_destroy(b);
        return NULL;
    }
    void *in[1] = {b->in};
    if (!(b->bind = ort_binding_create(encoder, capacity, in, b->out, err))) {
        encb_destroy(b);
        return NULL;
    }
    return b;
}

void encb_destroy(encb *b) {
    if (!b) return;
    ort_binding_destroy(b->bind);
    free(b->in);
    free(b->out);
    pthread_cond_destroy(&b->arrived);
    pthread_cond_destroy(&b->ran);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void encb_attach(encb *b) {
    pthread_mutex_lock(&b->mu);
    b->attached++;
    pthread_mutex_unlock(&b->mu);
}

void encb_detach(encb *b) {
    pthread_mutex_lock(&b->mu);
    b->attached--;
    pthread_cond_signal(&b->arrived); /* a waiting leader may now have every attached caller */
    pthread_mutex_unlock(&b->mu);
}

/* The leader's wait for company (lock held): only while other callers exist, until every
 * attached caller has a request queued, the capacity is full, or max_wait_us passed. */
static void wait_for_company(encb *b) {
    if (b->max_wait_us == 0) return;
    uint64_t due = now_ns() + (uint64_t)b->max_wait_us * 1000u;
    struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u), .tv_nsec = (long)(due % 1000000000u)};
    while (b->attached > 1 && b->queued_reqs < b->attached && b->queued_windows < b->cap && now_ns() < due)
        pthread_cond_timedwait(&b->arrived, &b->mu, &ts);
}

/* Takes whole requests, oldest first, up to the capacity (lock held); returns the windows taken
 * and the requests chained through next in *batch. The head always fits (parts <= capacity). */
static int take(encb *b, encb_req **batch, int *count) {
    int total = 0;
    encb_req **link = batch;
    *count = 0;
    while (b->head && total + b->head->n <= b->cap) {
        encb_req *r = b->head;
        b->head = r->next;
        if (!b->head) b->tail = NULL;
        b->queued_reqs--;
        b->queued_windows -= r->n;
        r->state = REQ_RUNNING;
        r->next = NULL;
        *link = r;
        link = &r->next;
        total += r->n;
        (*count)++;
    }
    return total;
}

/* One run as leader: called and returns with the lock held; the run itself is outside it. */
static void lead(encb *b) {
    b->leading = 1;
    wait_for_company(b);
    encb_req *batch = NULL;
    int count;
    int total = take(b, &batch, &count);
    pthread_mutex_unlock(&b->mu);
    int off = 0;
    for (encb_req *r = batch; r; r = r->next) {
        memcpy(b->in + (size_t)off * ORT_ENC_MEL_ELEMS, r->windows, (size_t)r->n * ORT_ENC_MEL_ELEMS * sizeof(float));
        off += r->n;
    }
    ls_err err = {0};
    int rc = ort_binding_run(b->bind, total, &err);
    if (rc != 0) ls_wrap(&err, "audio encoder");
    off = 0;
    for (encb_req *r = batch; rc == 0 && r; r = r->next) {
        memcpy(r->out, b->out + (size_t)off * ORT_ENC_FEAT_ELEMS, (size_t)r->n * ORT_ENC_FEAT_ELEMS * sizeof(float));
        off += r->n;
    }
    pthread_mutex_lock(&b->mu);
    for (encb_req *r = batch, *next; r; r = next) {
        next = r->next; /* r may be gone once it is DONE and the lock is free: read it first */
        r->rc = rc;
        if (rc != 0 && r->err) *r->err = err;
        r->state = REQ_DONE;
    }
    if (rc == 0) {
        b->st.runs++;
        b->st.windows += (uint64_t)total;
        b->st.requests += (uint64_t)count;
        b->st.shared_runs += count > 1;
        if ((uint64_t)total > b->st.max_windows) b->st.max_windows = (uint64_t)total;
    } else {
        b->st.failed_runs++;
    }
    b->leading = 0;
    pthread_cond_broadcast(&b->ran);
}

/* One part of at most capacity windows. */
static int run_part(encb *b, const float *windows, int n, float *out, ls_err *err) {
    encb_req req = {.windows = windows, .out = out, .n = n, .err = err};
    pthread_mutex_lock(&b->mu);
    if (b->tail) b->tail->next = &req;
    else b->head = &req;
    b->tail = &req;
    b->queued_reqs++;
    b->queued_windows += n;
    if (b->leading) pthread_cond_signal(&b->arrived);
    while (req.state != REQ_DONE) {
        if (!b->leading) lead(b);
        else pthread_cond_wait(&b->ran, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return req.rc;
}

int encb_run(encb *b, const float *windows, int n, float *out, ls_err *err) {
    if (!b || n < 0 || (n > 0 && (!windows || !out)))
        return ls_fail(err, LS_EINVAL, "encoder batcher: bad request (%d windows)", n);
    for (int off = 0; off < n; off += b->cap) {
        int part = n - off < b->cap ? n - off : b->cap;
        if (run_part(b, windows + (size_t)off * ORT_ENC_MEL_ELEMS, part, out + (size_t)off * ORT_ENC_FEAT_ELEMS,
                     err) != 0)
            return -1;
    }
    return 0;
}

void encb_stats_get(encb *b, encb_stats *out) {
    pthread_mutex_lock(&b->mu);
    *out = b->st;
    out->attached = b->attached;
    pthread_mutex_unlock(&b->mu);
}

ort_model *encb_model(const encb *b) { return b->enc; }
