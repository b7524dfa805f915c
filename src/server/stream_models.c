/* stream_models.c - one live-session scheduler per UNet model and one encoder batcher per
 * encoder model in use (stream_models.h). Both tables follow the same rule: created under the
 * lock on the first user, so a second session of the same model never starts another; destroyed
 * outside it when the last user leaves. */
#include "server/stream_models.h"

#include <stdlib.h>

#include "pipeline/worker.h"

#define MAX_MODELS 256

typedef struct slot {
    ort_model *unet;
    sched *s;
    int users;
} slot;

typedef struct enc_slot {
    ort_model *encoder;
    encb *b;
    int users;
} enc_slot;

struct app_stream {
    const srv_config *cfg;
    srv_cpu_plan *plan;
    sched_limits lim;
    pthread_mutex_t mu;
    slot slots[MAX_MODELS];
    enc_slot enc[MAX_MODELS];
};

app_stream *app_stream_create(const srv_config *cfg, srv_cpu_plan *plan, ls_err *err) {
    app_stream *m = calloc(1, sizeof *m);
    if (!m) return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    m->cfg = cfg;
    m->plan = plan;
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
        sched_destroy(m->slots[i].s);
        encb_destroy(m->enc[i].b);
    }
    sched_limits_destroy(&m->lim);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

sched *app_stream_acquire(app_stream *m, ort_model *unet, ls_err *err) {
    pthread_mutex_lock(&m->mu);
    slot *free_slot = NULL, *hit = NULL;
    for (int i = 0; i < MAX_MODELS && !hit; i++) {
        if (m->slots[i].s && m->slots[i].unet == unet) hit = &m->slots[i];
        else if (!m->slots[i].s && !free_slot) free_slot = &m->slots[i];
    }
    if (!hit && free_slot) {
        sched_cfg sc = {.workers = m->cfg->stream_workers, .max_batch = m->cfg->stream_max_batch,
                        .max_wait_us = m->cfg->stream_max_wait_us,
                        .max_sessions = m->cfg->stream_max_sessions_per_model,
                        .max_frame_w = m->cfg->max_frame_width, .max_frame_h = m->cfg->max_frame_height};
        int cpus[SCHED_MAX_WORKERS];
        if (sc.workers <= SCHED_MAX_WORKERS && srv_cpu_plan_take(m->plan, sc.workers, cpus) >= 0) sc.cpus = cpus;
        sched *s = sched_create(unet, &sc, &m->lim, err);
        if (s) *free_slot = (slot){.unet = unet, .s = s}, hit = free_slot;
    } else if (!hit) {
        ls_fail(err, LS_ENOMEM, "too many models with live sessions (%d)", MAX_MODELS);
    }
    if (hit) hit->users++;
    pthread_mutex_unlock(&m->mu);
    return hit ? hit->s : NULL;
}

void app_stream_release(app_stream *m, sched *s) {
    if (!s) return;
    sched *dead = NULL;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MAX_MODELS; i++)
        if (m->slots[i].s == s && --m->slots[i].users == 0) {
            dead = s;
            m->slots[i] = (slot){0};
        }
    pthread_mutex_unlock(&m->mu);
    sched_destroy(dead); /* joins its threads: outside the lock */
}

encb *app_stream_acquire_encoder(app_stream *m, ort_model *encoder, ls_err *err) {
    pthread_mutex_lock(&m->mu);
    enc_slot *free_slot = NULL, *hit = NULL;
    for (int i = 0; i < MAX_MODELS && !hit; i++) {
        if (m->enc[i].b && m->enc[i].encoder == encoder) hit = &m->enc[i];
        else if (!m->enc[i].b && !free_slot) free_slot = &m->enc[i];
    }
    if (!hit && free_slot) {
        encb *b = encb_create(encoder, APP_STREAM_ENCB_CAPACITY, m->cfg->stream_encoder_max_wait_us, err);
        if (b) *free_slot = (enc_slot){.encoder = encoder, .b = b}, hit = free_slot;
    } else if (!hit) {
        ls_fail(err, LS_ENOMEM, "too many encoder models with live sessions (%d)", MAX_MODELS);
    }
    if (hit) hit->users++;
    pthread_mutex_unlock(&m->mu);
    return hit ? hit->b : NULL;
}

void app_stream_release_encoder(app_stream *m, encb *b) {
    if (!b) return;
    encb *dead = NULL;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MAX_MODELS; i++)
        if (m->enc[i].b == b && --m->enc[i].users == 0) {
            dead = b;
            m->enc[i] = (enc_slot){0};
        }
    pthread_mutex_unlock(&m->mu);
    encb_destroy(dead);
}
