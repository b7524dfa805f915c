/* stream_models.c - one live-session scheduler per UNet model and one encoder batcher per
 * encoder model in use (stream_models.h). Both tables follow the same rule: created under the
 * lock on the first user, so a second session of the same model never starts another; destroyed
 * outside it when the last user leaves. */
#include "server/stream_models.h"

#include <stdlib.h>

#include "pipeline/worker.h"

#define MAX_MODELS 256

/* A shared object (a scheduler or a batcher) per model, counted by its users. */
typedef struct slot {
    ort_model *model;
    void *obj;
    int users;
} slot;

struct app_stream {
    const srv_config *cfg;
    srv_cpu_plan *plan;
    int pipeline;
    sched_limits lim;
    pthread_mutex_t mu;
    slot scheds[MAX_MODELS];
    slot batchers[MAX_MODELS];
};

app_stream *app_stream_create(const srv_config *cfg, srv_cpu_plan *plan, int pipeline, ls_err *err) {
    app_stream *m = calloc(1, sizeof *m);
    if (!m) return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    m->cfg = cfg;
    m->plan = plan;
    m->pipeline = pipeline;
    if (sched_limits_init(&m->lim, cfg->stream_max_sessions) != 0) {
        free(m);
        return ls_fail(err, LS_ENOMEM, "cannot initialise the session limits"), NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void app_stream_destroy(app_stream *m) {
    if (!m) return;
    for (int i = 0; i < MAX_MODELS; i++) {
        sched_destroy(m->scheds[i].obj);
        encb_destroy(m->batchers[i].obj);
    }
    sched_limits_destroy(&m->lim);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Made under the table's lock (make may use m's fields: the CPU plan). */
typedef void *(*make_fn)(app_stream *m, ort_model *model, ls_err *err);

/* The object of `model` in tab, made on first use; one more user. */
static void *acquire(app_stream *m, slot *tab, ort_model *model, make_fn make, const char *what, ls_err *err) {
    pthread_mutex_lock(&m->mu);
    slot *free_slot = NULL, *hit = NULL;
    for (int i = 0; i < MAX_MODELS && !hit; i++) {
        if (tab[i].obj && tab[i].model == model) hit = &tab[i];
        else if (!tab[i].obj && !free_slot) free_slot = &tab[i];
    }
    if (!hit && free_slot) {
        void *obj = make(m, model, err);
        if (obj) *free_slot = (slot){.model = model, .obj = obj}, hit = free_slot;
    } else if (!hit) {
        ls_fail(err, LS_ENOMEM, "too many %s models with live sessions (%d)", what, MAX_MODELS);
    }
    if (hit) hit->users++;
    pthread_mutex_unlock(&m->mu);
    return hit ? hit->obj : NULL;
}

/* One user fewer; returns obj when that was the last (the caller destroys it, outside the lock). */
static void *release(app_stream *m, slot *tab, void *obj) {
    void *dead = NULL;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MAX_MODELS; i++)
        if (obj && tab[i].obj == obj && --tab[i].users == 0) {
            dead = obj;
            tab[i] = (slot){0};
        }
    pthread_mutex_unlock(&m->mu);
    return dead;
}

static void *make_sched(app_stream *m, ort_model *unet, ls_err *err) {
    sched_cfg sc = {.workers = m->cfg->stream_workers, .max_batch = m->cfg->stream_max_batch,
                    .max_wait_us = m->cfg->stream_max_wait_us,
                    .max_sessions = m->cfg->stream_max_sessions_per_model,
                    .max_frame_w = m->cfg->max_frame_width, .max_frame_h = m->cfg->max_frame_height,
                    .pipeline = m->pipeline};
    int cpus[SCHED_MAX_WORKERS];
    if (sc.workers <= SCHED_MAX_WORKERS && srv_cpu_plan_take(m->plan, sc.workers, cpus) >= 0) sc.cpus = cpus;
    return sched_create(unet, &sc, &m->lim, err);
}

static void *make_batcher(app_stream *m, ort_model *encoder, ls_err *err) {
    return encb_create(encoder, APP_STREAM_ENCB_CAPACITY, m->cfg->stream_encoder_max_wait_us, err);
}

sched *app_stream_acquire(app_stream *m, ort_model *unet, ls_err *err) {
    return acquire(m, m->scheds, unet, make_sched, "UNet", err);
}

void app_stream_release(app_stream *m, sched *s) {
    sched_destroy(release(m, m->scheds, s)); /* joins its threads: outside the lock */
}

encb *app_stream_acquire_encoder(app_stream *m, ort_model *encoder, ls_err *err) {
    return acquire(m, m->batchers, encoder, make_batcher, "encoder", err);
}

void app_stream_release_encoder(app_stream *m, encb *b) {
    encb_destroy(release(m, m->batchers, b));
}
