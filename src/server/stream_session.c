/* stream_session.c - a live session's audio side and frame production: configuration, audio
 * chunks into the utterance context, the silence gate, and submission of frames to the
 * scheduler (stream_session.h). Delivery and pacing are in stream_pace.c. */
#include "server/stream_session_priv.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/features.h"
#include "pipeline/render.h"

void sess_cfg_defaults(sess_cfg *c) {
    *c = (sess_cfg){.format = PCM_S16LE, .sample_rate = 16000, .channels = 1, .pacing = SESS_PACE_BURST,
                    .lookahead = 7, .idle_detect = 1, .gate_on = -2.5f, .gate_off = -3.0f, .gate_hold = 6,
                    .preroll = 2, .fade_frames = 3, .queue_limit = 32, .max_inflight = 8, .backlog_s = 30,
                    .max_chunk_ms = 10000, .realtime_delay = 14, .auto_flush_ms = 300};
}

static int check_cfg(const sess_cfg *c, ls_err *err) {
    if (!c->av || !c->encoder || !c->sched) return ls_fail(err, LS_EINVAL, "session: avatar, encoder and scheduler are required");
    if (c->av->width > sched_max_frame_w(c->sched) || c->av->height > sched_max_frame_h(c->sched))
        return ls_fail(err, LS_EINVAL, "session: avatar frames %dx%d exceed the scheduler's %dx%d", c->av->width,
                       c->av->height, sched_max_frame_w(c->sched), sched_max_frame_h(c->sched));
    if (c->format != PCM_S16LE && c->format != PCM_F32LE) return ls_fail(err, LS_EINVAL, "session: unknown audio encoding");
    if (c->sample_rate < PCM_MIN_RATE || c->sample_rate > PCM_MAX_RATE || c->channels < 1 || c->channels > PCM_MAX_CHANNELS)
        return ls_fail(err, LS_EINVAL, "session: %d Hz x %d channels not supported", c->sample_rate, c->channels);
    if (c->start_frame < 0) return ls_fail(err, LS_EINVAL, "session: negative start frame");
    if (c->lookahead < 1 || c->lookahead > 7) return ls_fail(err, LS_EINVAL, "session: lookahead %d outside 1..7", c->lookahead);
    if (c->gate_hold < 0 || c->gate_hold > 250 || c->preroll < 0 || c->fade_frames < 0 || c->preroll + c->fade_frames > 15 ||
        !(c->gate_off <= c->gate_on))
        return ls_fail(err, LS_EINVAL, "session: gate settings out of range (hold 0..250, preroll + fade <= 15, off <= on)");
    if (c->queue_limit < 2 || c->queue_limit > 256 || c->max_inflight < 1 || c->max_inflight > c->queue_limit)
        return ls_fail(err, LS_EINVAL, "session: queue limit 2..256 and in-flight 1..queue limit");
    if (c->backlog_s < 1 || c->backlog_s > 600 || c->max_chunk_ms < 10 || c->max_chunk_ms > 60000 ||
        c->max_chunk_ms > c->backlog_s * 1000)
        return ls_fail(err, LS_EINVAL, "session: backlog 1..600 s, chunks 10..60000 ms and within the backlog");
    if (c->realtime_delay < 0 || c->realtime_delay > 250 || c->auto_flush_ms < 0)
        return ls_fail(err, LS_EINVAL, "session: realtime delay 0..250 frames, auto flush >= 0");
    return 0;
}

stream_session *sess_create(const sess_cfg *cfg, ls_err *err) {
    if (check_cfg(cfg, err) != 0) return NULL;
    stream_session *s = calloc(1, sizeof *s);
    if (!s) { ls_fail(err, LS_ENOMEM, "session: out of memory"); return NULL; }
    s->cfg = *cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (sched_admit(cfg->sched, err) != 0) goto fail;
    s->admitted = 1;
    /* 16 kHz samples one chunk can yield: its own plus what the resampler held back before. */
    s->max_chunk = (size_t)cfg->max_chunk_ms * PCM_RATE / 1000 + 1 + 1024;
    s->gate_cap = (size_t)cfg->backlog_s * 25 + 64;
    s->cap = cfg->queue_limit + 1; /* + the frame the caller holds */
    size_t frame_bytes = (size_t)cfg->av->width * cfg->av->height * 3;
    s->chunk = malloc(s->max_chunk * sizeof(float));
    s->speaking = calloc(s->gate_cap, 1);
    s->ring = calloc((size_t)s->cap, sizeof *s->ring);
    s->jobs = calloc((size_t)cfg->max_inflight, sizeof *s->jobs);
    s->blocks = malloc((size_t)cfg->max_inflight * ORT_UNET_AUDIO_ELEMS * sizeof(float));
    if (!s->chunk || !s->speaking || !s->ring || !s->jobs || !s->blocks) goto oom;
    for (int i = 0; i < s->cap; i++)
        if (!(s->ring[i].buf = malloc(frame_bytes))) goto oom;
    for (int i = 0; i < cfg->max_inflight; i++) {
        s->jobs[i].s = s;
        s->jobs[i].j.audio = s->blocks + (size_t)i * ORT_UNET_AUDIO_ELEMS;
        s->jobs[i].free_next = s->free_jobs;
        s->free_jobs = &s->jobs[i];
    }
    if (!(s->pcm = pcm_stream_create(cfg->format, cfg->sample_rate, cfg->channels,
                                     (size_t)cfg->max_chunk_ms * (size_t)cfg->sample_rate / 1000 + 1, err)))
        goto fail;
    if (!(s->audio = sa_create(cfg->encoder, cfg->backlog_s, err))) goto fail;
    return s;
oom:
    ls_fail(err, LS_ENOMEM, "session: out of memory for its buffers");
fail:
    sess_close(s);
    return NULL;
}

/* Scheduler callback (its lock held): a queued job taken back. */
static void job_cancelled(sched_job *job, void *ctx) {
    stream_session *s = ctx;
    sess_job *sj = (sess_job *)job;
    sess_entry *e = &s->ring[sj->seq % (uint64_t)s->cap];
    e->state = ENTRY_EMPTY;
    e->stale = 1;
    sj->free_next = s->free_jobs;
    s->free_jobs = sj;
    s->inflight--;
}

void sess_close(stream_session *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    if (s->admitted) sched_cancel_owner(s->cfg.sched, s, job_cancelled, s);
    while (s->inflight > 0) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->admitted) sched_leave(s->cfg.sched);
    sa_free(s->audio);
    pcm_stream_free(s->pcm);
    if (s->ring)
        for (int i = 0; i < s->cap; i++) free(s->ring[i].buf);
    free(s->ring);
    free(s->jobs);
    free(s->blocks);
    free(s->speaking);
    free(s->chunk);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- the silence gate, by utterance frame ---- */

static void gate_update(stream_session *s) {
    size_t n = sa_windows(s->audio);
    for (; s->gate_n < n; s->gate_n++) {
        float e = sa_window_energy(s->audio, s->gate_n);
        if (!s->gate_on_state) {
            if (e >= s->cfg.gate_on) { s->gate_on_state = 1; s->quiet_run = 0; }
        } else if (e < s->cfg.gate_off) {
            if (++s->quiet_run > s->cfg.gate_hold) s->gate_on_state = 0;
        } else {
            s->quiet_run = 0;
        }
        s->speaking[s->gate_n % s->gate_cap] = (unsigned char)s->gate_on_state;
    }
}

/* Whether utterance frame i is generated: speech at i or within the next `preroll` frames. */
static int gen_at(const stream_session *s, long long i) {
    if (!s->cfg.idle_detect) return 1;
    if (i < 0) return 0; /* before the utterance: idle */
    size_t total = sa_total_frames(s->audio);
    if (sa_finished(s->audio) && (size_t)i >= total) return 0;
    for (long long j = i; j <= i + s->cfg.preroll; j++)
        if ((size_t)j < s->gate_n && s->speaking[(size_t)j % s->gate_cap]) return 1;
    return 0;
}

/* Blend weight (of 256) of generated frame i: d/(fade+1) at distance d from an idle frame. */
static int fade_at(const stream_session *s, size_t i) {
    int f = s->cfg.fade_frames;
    if (!s->cfg.idle_detect) return 256;
    for (int d = 1; d <= f; d++)
        if (!gen_at(s, (long long)i - d) || !gen_at(s, (long long)i + d)) return 256 * d / (f + 1);
    return 256;
}

static int frames_ahead(const stream_session *s) {
    int a = s->cfg.lookahead - 1;
    if (s->cfg.idle_detect && s->cfg.preroll + s->cfg.fade_frames > a) a = s->cfg.preroll + s->cfg.fade_frames;
    return a;
}

/* ---- production ---- */

static void job_done(sched_job *job, int rc, const ls_err *err) {
    sess_job *sj = (sess_job *)job;
    stream_session *s = sj->s;
    pthread_mutex_lock(&s->mu);
    sess_entry *e = &s->ring[sj->seq % (uint64_t)s->cap];
    if (rc != 0 && !e->stale && !s->failed) {
        s->failed = 1;
        s->fail_err = *err;
        ls_wrap(&s->fail_err, "frame %llu", (unsigned long long)e->index);
    }
    e->state = ENTRY_READY;
    sj->free_next = s->free_jobs;
    s->free_jobs = sj;
    s->inflight--;
    ls_err perr = {0};
    if (!s->failed && sess_pump(s, &perr) != 0) { s->failed = 1; s->fail_err = perr; }
    /* Notify before unlocking: once inflight is 0 and the lock is free, sess_close may return and
     * the call (notify's ctx) may be freed. Lock order is s->mu, then the call's own lock. */
    if (s->notify) s->notify(s->notify_ctx);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Makes room for one more entry; 0 when there is none (wait for the consumer or the workers). */
static int make_room(stream_session *s) {
    for (;;) {
        int blocked_by_held = s->held && s->sub_seq - s->held_seq >= (uint64_t)s->cap;
        if (s->sub_seq - s->pop_seq < (uint64_t)s->cfg.queue_limit && !blocked_by_held) return 1;
        if (s->cfg.pacing != SESS_PACE_BURST || blocked_by_held) return 0;
        sess_entry *h = &s->ring[s->pop_seq % (uint64_t)s->cap];
        if (h->state != ENTRY_READY) return 0;
        /* A slow consumer: the oldest ready frame goes (its speech events still go out). */
        if (!h->stale) {
            s->st.dropped++;
            s->next_out = h->index + 1;
            sess_entry_events(s, h);
        }
        h->state = ENTRY_EMPTY;
        s->pop_seq++;
    }
}

int sess_pump(stream_session *s, ls_err *err) {
    if (!s->utt_open || s->failed) return 0;
    gate_update(s);
    size_t ready = sa_frames_ready(s->audio, frames_ahead(s));
    const avatar *av = s->cfg.av;
    while (s->next_sub < ready) {
        sess_skip_stale(s);
        if (!make_room(s)) break;
        int g = gen_at(s, (long long)s->next_sub);
        if (g && !s->free_jobs) break;
        uint64_t seq = s->sub_seq;
        sess_entry *e = &s->ring[seq % (uint64_t)s->cap];
        e->stale = 0;
        e->index = s->utt_base + s->next_sub;
        e->avatar_frame = avatar_frame_index((int64_t)e->index, s->cfg.start_frame, av->frame_count);
        e->generated = g;
        e->fade_q8 = g ? fade_at(s, s->next_sub) : 256;
        e->events = 0;
        if (s->cfg.idle_detect && g != s->prev_generated) e->events |= g ? ENTRY_EV_STARTED : ENTRY_EV_ENDED;
        if (s->cfg.idle_detect && g && sa_finished(s->audio) && s->next_sub + 1 == sa_total_frames(s->audio))
            e->events |= ENTRY_EV_ENDED_AFTER;
        if (g) {
            sess_job *sj = s->free_jobs;
            if (sa_frame_block(s->audio, s->next_sub, sj->j.audio, err) != 0) return -1;
            s->free_jobs = sj->free_next;
            sj->seq = seq;
            sj->j.owner = s;
            sj->j.av = av;
            sj->j.avatar_frame = e->avatar_frame;
            sj->j.fade_q8 = e->fade_q8;
            sj->j.dst = e->buf;
            sj->j.done = job_done;
            e->bgr = e->buf;
            e->state = ENTRY_PENDING;
            s->inflight++;
            s->st.unet_jobs++;
            sched_submit(s->cfg.sched, &sj->j);
        } else {
            e->bgr = avatar_frame(av, e->avatar_frame);
            e->state = ENTRY_READY;
        }
        s->prev_generated = g;
        s->next_sub++;
        s->sub_seq++;
    }
    sa_release(s->audio, s->next_sub);
    if (sa_finished(s->audio) && s->next_sub == sa_total_frames(s->audio)) {
        s->utt_open = 0;
        s->next_index = s->utt_base + s->next_sub;
    }
    return 0;
}

/* ---- audio and control ---- */

static void utterance_start(stream_session *s) {
    sa_reset(s->audio);
    uint64_t base = s->next_index;
    if (s->cfg.pacing == SESS_PACE_REALTIME && s->next_out + (uint64_t)s->cfg.realtime_delay > base)
        base = s->next_out + (uint64_t)s->cfg.realtime_delay;
    s->utt_base = base;
    s->utt_open = 1;
    s->next_sub = 0;
    s->gate_n = 0;
    s->gate_on_state = s->quiet_run = 0;
    s->prev_generated = 0;
    s->st.utterances++;
}

int sess_push_audio(stream_session *s, const void *bytes, size_t n_bytes, uint64_t now_ns, ls_err *err) {
    size_t n = 0;
    /* The converter is only used here, under the lock: one thread at a time. */
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (s->failed) { *err = s->fail_err; goto out; }
    if (s->utt_open && sa_finished(s->audio)) {
        ls_fail(err, LS_EBUSY, "session: the flushed utterance is still being queued; retry after frames");
        goto out;
    }
    if (!s->utt_open) {
        pcm_stream_reset(s->pcm); /* a new utterance is a new signal */
    } else if (sa_room(s->audio) < pcm_stream_bound(s->pcm, n_bytes)) {
        /* Refused before the resampler sees it, so that a retry is not resampled twice. */
        ls_fail(err, LS_EBUSY, "stream audio: the unrendered backlog of %d s is full; retry after frames",
                s->cfg.backlog_s);
        goto out;
    }
    if (pcm_stream_push(s->pcm, bytes, n_bytes, s->chunk, s->max_chunk, &n, err) != 0) goto out;
    if (!s->utt_open) utterance_start(s);
    if (sa_append(s->audio, s->chunk, n, err) != 0) goto out;
    s->last_audio_ns = now_ns;
    s->st.samples_in += n;
    rc = sess_pump(s, err);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sess_flush_locked(stream_session *s, ls_err *err) {
    if (!s->utt_open || sa_finished(s->audio)) return 0;
    /* The resampler's tail (kept by pcm_stream, so a flush refused for a full backlog can be
     * retried), then the end of the utterance. */
    const float *tail;
    size_t n;
    if (pcm_stream_finish(s->pcm, &tail, &n, err) != 0) return -1;
    if (sa_room(s->audio) < n)
        return ls_fail(err, LS_EBUSY, "stream audio: the unrendered backlog is full; retry the flush after frames");
    if (n && sa_append(s->audio, tail, n, err) != 0) return -1;
    if (sa_finish(s->audio, err) != 0) return -1;
    return sess_pump(s, err);
}

int sess_flush(stream_session *s, ls_err *err) {
    pthread_mutex_lock(&s->mu);
    int rc = sess_flush_locked(s, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sess_interrupt(stream_session *s, ls_err *err) {
    (void)err;
    pthread_mutex_lock(&s->mu);
    sched_cancel_owner(s->cfg.sched, s, job_cancelled, s);
    for (uint64_t q = s->pop_seq; q < s->sub_seq; q++) {
        sess_entry *e = &s->ring[q % (uint64_t)s->cap];
        if (!e->stale) s->st.interrupted_frames++;
        e->stale = 1; /* pending ones are skipped once their worker is done */
    }
    sa_reset(s->audio);
    s->utt_open = 0;
    s->next_index = s->next_out;
    s->st.interrupts++;
    sess_push_event(s, SESS_EV_INTERRUPTED, s->next_out);
    sess_skip_stale(s);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}
