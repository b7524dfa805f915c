/* stream_sched.c - cross-session UNet batching: a job queue and worker threads (stream_sched.h). */
#include "server/stream_sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image/paste.h"
#include "image/prepare.h"
#include "infer/ort_affinity.h"
#include "pipeline/render.h"
#include "pipeline/unet_runner.h"
#include "pipeline/unet_io.h"
#include "pipeline/worker.h"

typedef struct sched_thread {
    sched *s;
    pipe_worker *w;
    pthread_t tid;
    int started;
} sched_thread;

struct sched {
    sched_cfg cfg;
    ort_model *unet;
    sched_limits *limits;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* jobs arrived, or stop */
    sched_job *head, *tail;   /* FIFO across sessions */
    int queued, sessions, stop;
    sched_stats st;
    sched_thread th[SCHED_MAX_WORKERS];
};

int sched_limits_init(sched_limits *l, int max_total) {
    l->max_total = max_total;
    l->live = 0;
    return pthread_mutex_init(&l->mu, NULL) == 0 ? 0 : -1;
}

void sched_limits_destroy(sched_limits *l) { pthread_mutex_destroy(&l->mu); }

/* Blends the box region of dst toward the original frame: dst = orig + a (dst - orig), a = q8/256.
 * Only the box differs between the two, so only it is touched. */
static void fade_box(uint8_t *dst, const uint8_t *orig, int width, ls_box b, int q8) {
    size_t stride = (size_t)width * 3;
    for (int y = b.y1; y < b.y2; y++) {
        uint8_t *d = dst + (size_t)y * stride + (size_t)b.x1 * 3;
        const uint8_t *o = orig + (size_t)y * stride + (size_t)b.x1 * 3;
        for (int x = 0; x < box_width(b) * 3; x++)
            d[x] = (uint8_t)((o[x] * (256 - q8) + d[x] * q8 + 128) >> 8);
    }
}

/* Moves up to max_batch queued jobs, oldest first, into jobs[]. Called with mu held. */
static int pop_jobs(sched *s, sched_job **jobs) {
    int n = 0;
    uint64_t now = pipe_now_ns();
    while (n < s->cfg.max_batch && s->head) {
        sched_job *j = s->head;
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        s->queued--;
        s->st.queue_wait_ns += now - j->enqueued_ns;
        jobs[n++] = j;
    }
    /* Leftovers: let another worker start on them. */
    if (s->queued > 0) pthread_cond_signal(&s->cv);
    return n;
}

/* Waits for a batch: max_batch jobs, or the oldest past its deadline. Called with mu held;
 * returns the number taken into jobs[], 0 when stopping. */
static int take_batch(sched *s, sched_job **jobs) {
    for (;;) {
        if (s->stop) return 0;
        if (s->queued >= s->cfg.max_batch ||
            (s->queued > 0 && pipe_now_ns() >= s->head->enqueued_ns + (uint64_t)s->cfg.max_wait_us * 1000))
            break;
        if (s->queued == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else {
            uint64_t due = s->head->enqueued_ns + (uint64_t)s->cfg.max_wait_us * 1000;
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u), .tv_nsec = (long)(due % 1000000000u)};
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
    }
    return pop_jobs(s, jobs);
}

/* Jobs prepared in one slot set of a worker, waiting for (or in) their UNet run. */
typedef struct sched_batch {
    sched_job *jobs[PIPE_MAX_BATCH];
    int n, set;
    int overlapped; /* prepared while another batch ran */
} sched_batch;

/* Prepares jobs[0..n) into slot set `set` (prep_frame + the job's audio block); a job that cannot
 * be prepared gets its done(-1) at once. Returns how many were prepared into b. */
static int prepare_batch(sched *s, pipe_worker *w, sched_job **jobs, int n, int set, sched_batch *b) {
    ls_err err = {0};
    int s0 = set * w->cfg.max_batch;
    b->n = 0;
    b->set = set;
    b->overlapped = 0;
    for (int i = 0; i < n; i++) {
        sched_job *j = jobs[i];
        const avatar *av = j->av;
        if (av->width > s->cfg.max_frame_w || av->height > s->cfg.max_frame_h) {
            ls_fail(&err, LS_EINVAL, "avatar frames %dx%d exceed the scheduler's %dx%d", av->width,
                    av->height, s->cfg.max_frame_w, s->cfg.max_frame_h);
            j->done(j, -1, &err);
            continue;
        }
        if (pipe_unet_prepare(w, s0 + b->n, av, j->avatar_frame, NULL, NULL, &err) != 0) {
            ls_wrap(&err, "avatar frame %d", j->avatar_frame);
            j->done(j, -1, &err);
            continue;
        }
        memcpy(w->unet_audio + (size_t)(s0 + b->n) * ORT_UNET_AUDIO_ELEMS, j->audio,
               ORT_UNET_AUDIO_ELEMS * sizeof(float));
        b->jobs[b->n++] = j;
    }
    return b->n;
}

static void count_run(sched *s, const sched_batch *b, uint64_t run_ns) {
    pthread_mutex_lock(&s->mu);
    s->st.runs++;
    s->st.items += (uint64_t)b->n;
    if ((uint64_t)b->n > s->st.max_batch_seen) s->st.max_batch_seen = (uint64_t)b->n;
    s->st.run_ns += run_ns;
    s->st.overlapped_runs += (uint64_t)b->overlapped;
    pthread_mutex_unlock(&s->mu);
}

/* Composites each job's output into its destination (the avatar frame, the pasted face, the
 * cross-fade) and calls its done; after a failed run (rc != 0) every job gets run_err. */
static void finish_batch(pipe_worker *w, const sched_batch *b, int rc, const ls_err *run_err) {
    int s0 = b->set * w->cfg.max_batch;
    for (int i = 0; i < b->n; i++) {
        sched_job *j = b->jobs[i];
        const avatar *av = j->av;
        if (rc != 0) { j->done(j, -1, run_err); continue; }
        const uint8_t *orig = avatar_frame(av, j->avatar_frame);
        ls_box box = av->boxes[j->avatar_frame];
        memcpy(j->dst, orig, (size_t)av->width * 3 * (size_t)av->height);
        ls_err perr = {0};
        if (pipe_unet_paste(w, s0 + i, box, j->dst, av->width, av->height, (size_t)av->width * 3, &perr) != 0) {
            j->done(j, -1, &perr);
            continue;
        }
        if (j->fade_q8 < 256) fade_box(j->dst, orig, av->width, box, j->fade_q8 < 0 ? 0 : j->fade_q8);
        j->done(j, 0, NULL);
    }
}

/* One batch at a time: prepare, run, composite. */
static void serve_serial(sched *s, pipe_worker *w) {
    sched_job *jobs[PIPE_MAX_BATCH];
    sched_batch b;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int n = take_batch(s, jobs);
        pthread_mutex_unlock(&s->mu);
        if (n == 0) return;
        if (prepare_batch(s, w, jobs, n, 0, &b) == 0) continue;
        ls_err err = {0};
        uint64_t t0 = pipe_now_ns();
        int rc = ort_binding_run(w->unet_binding, b.n, &err);
        if (rc == 0) count_run(s, &b, pipe_now_ns() - t0);
        finish_batch(w, &b, rc, &err);
    }
}

/* Pipelined (cfg.pipeline): the UNet runs on the worker's runner thread while this thread
 * prepares the next batch in the other slot set, then composites the previous batch while the
 * next one runs. While a batch runs, whatever is queued (up to max_batch) is taken at once
 * without waiting: the device is busy, so waiting would not start the next run sooner. Hence
 * batches grow with the queue (full ones when it is deep, small ones started as soon as the device
 * is free under light load); an idle worker waits as the serial one does (take_batch). */
static void serve_pipelined(sched *s, pipe_worker *w) {
    sched_job *jobs[PIPE_MAX_BATCH];
    sched_batch bt[2];
    sched_batch *running = NULL; /* on the runner */
    int free_set = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int n = running ? (s->stop ? 0 : pop_jobs(s, jobs)) : take_batch(s, jobs);
        pthread_mutex_unlock(&s->mu);
        if (n == 0 && !running) return;
        sched_batch *next = n > 0 && prepare_batch(s, w, jobs, n, free_set, &bt[free_set]) > 0 ? &bt[free_set] : NULL;
        if (running) {
            ls_err err = {0};
            uint64_t run_ns = 0;
            int rc = pipe_runner_wait(w->runner, &run_ns, &err);
            if (next) {
                next->overlapped = 1;
                pipe_runner_start(w->runner, pipe_worker_unet_binding(w, next->set), next->n);
            }
            if (rc == 0) count_run(s, running, run_ns);
            finish_batch(w, running, rc, &err);
        } else if (next) {
            pipe_runner_start(w->runner, pipe_worker_unet_binding(w, next->set), next->n);
        }
        running = next;
        if (next) free_set = !free_set;
    }
}

static void *worker_main(void *arg) {
    sched_thread *t = arg;
    if (t->w->runner) serve_pipelined(t->s, t->w);
    else serve_serial(t->s, t->w);
    return NULL;
}

sched *sched_create(ort_model *unet, const sched_cfg *cfg, sched_limits *limits, ls_err *err) {
    if (!unet || !limits || cfg->workers < 1 || cfg->workers > SCHED_MAX_WORKERS || cfg->max_wait_us < 0 ||
        cfg->max_wait_us > 1000000 || cfg->max_sessions < 1) {
        ls_fail(err, LS_EINVAL, "scheduler: need a UNet, limits, 1..%d workers, a wait of 0..1 s and "
                "max_sessions >= 1", SCHED_MAX_WORKERS);
        return NULL;
    }
    sched *s = calloc(1, sizeof *s);
    if (!s) { ls_fail(err, LS_ENOMEM, "scheduler: out of memory"); return NULL; }
    s->cfg = *cfg;
    s->cfg.cpus = NULL; /* borrowed for creation only */
    s->unet = unet;
    s->limits = limits;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines come from pipe_now_ns */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pipe_worker_cfg wc = {.max_batch = cfg->max_batch, .max_frame_w = cfg->max_frame_w,
                          .max_frame_h = cfg->max_frame_h, .pipeline = cfg->pipeline};
    for (int i = 0; i < cfg->workers; i++) {
        sched_thread *t = &s->th[i];
        t->s = s;
        if (!(t->w = pipe_worker_create(&wc, err)) || pipe_worker_bind(t->w, NULL, unet, err) != 0)
            goto fail;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        int bad = cfg->cpus && ort_aff_thread_attr(&attr, cfg->cpus[i], err) != 0;
        int e = bad ? 0 : pthread_create(&t->tid, &attr, worker_main, t);
        pthread_attr_destroy(&attr);
        if (bad || e) {
            if (e) ls_fail(err, LS_ENOMEM, "scheduler: cannot start worker thread %d", i);
            goto fail;
        }
        t->started = 1;
    }
    return s;
fail:
    sched_destroy(s);
    return NULL;
}

void sched_destroy(sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < SCHED_MAX_WORKERS; i++) {
        if (s->th[i].started) pthread_join(s->th[i].tid, NULL);
        pipe_worker_destroy(s->th[i].w);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int sched_admit(sched *s, ls_err *err) {
    pthread_mutex_lock(&s->limits->mu);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->sessions >= s->cfg.max_sessions)
        rc = ls_fail(err, LS_ENOMEM, "live session limit reached for this model (%d)", s->cfg.max_sessions);
    else if (s->limits->live >= s->limits->max_total)
        rc = ls_fail(err, LS_ENOMEM, "live session limit reached (%d in total)", s->limits->max_total);
    else {
        s->sessions++;
        s->limits->live++;
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->limits->mu);
    return rc;
}

void sched_leave(sched *s) {
    pthread_mutex_lock(&s->limits->mu);
    pthread_mutex_lock(&s->mu);
    s->sessions--;
    s->limits->live--;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->limits->mu);
}

void sched_submit(sched *s, sched_job *job) {
    job->next = NULL;
    job->enqueued_ns = pipe_now_ns();
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = job;
    else s->head = job;
    s->tail = job;
    s->queued++;
    /* One waiter suffices: it re-checks the batch condition and signals on for leftovers. */
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int sched_cancel_owner(sched *s, void *owner, void (*fn)(sched_job *job, void *ctx), void *ctx) {
    int n = 0;
    pthread_mutex_lock(&s->mu);
    sched_job **p = &s->head, *last = NULL;
    while (*p) {
        if ((*p)->owner == owner) {
            sched_job *j = *p;
            *p = j->next;
            if (fn) fn(j, ctx);
            n++;
            s->queued--;
        } else {
            last = *p;
            p = &(*p)->next;
        }
    }
    s->tail = last;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void sched_stats_get(sched *s, sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->sessions = s->sessions;
    out->queued = s->queued;
    pthread_mutex_unlock(&s->mu);
}

int sched_pipelined(const sched *s) { return s->cfg.pipeline; }
int sched_max_frame_w(const sched *s) { return s->cfg.max_frame_w; }
int sched_max_frame_h(const sched *s) { return s->cfg.max_frame_h; }
