/* stream_pace.c - a live session's delivery side: frames out in order, burst or paced at 25 fps
 * against the caller's clock (so tests drive it with a fake one), idle fillers, events, stats
 * (stream_session.h). */
#include "server/stream_session_priv.h"

#include <string.h>
#include <time.h>

#include "pipeline/render.h"

void sess_push_event(stream_session *s, sess_event_type type, uint64_t frame) {
    if (s->ev_len == SESS_EVENTS) { /* nobody reads them: keep the newest */
        s->ev_head = (s->ev_head + 1) % SESS_EVENTS;
        s->ev_len--;
    }
    s->events[(s->ev_head + s->ev_len) % SESS_EVENTS] = (sess_event){type, frame};
    s->ev_len++;
}

void sess_entry_events(stream_session *s, const sess_entry *e) {
    if (e->events & ENTRY_EV_STARTED) sess_push_event(s, SESS_EV_SPEECH_STARTED, e->index);
    if (e->events & ENTRY_EV_ENDED) sess_push_event(s, SESS_EV_SPEECH_ENDED, e->index);
    if (e->events & ENTRY_EV_ENDED_AFTER) sess_push_event(s, SESS_EV_SPEECH_ENDED, e->index + 1);
}

void sess_skip_stale(stream_session *s) {
    while (s->pop_seq < s->sub_seq) {
        sess_entry *e = &s->ring[s->pop_seq % (uint64_t)s->cap];
        if (!e->stale || e->state == ENTRY_PENDING) return;
        e->state = ENTRY_EMPTY;
        s->pop_seq++;
    }
}

static sess_entry *head(stream_session *s) {
    sess_skip_stale(s);
    if (s->pop_seq == s->sub_seq) return NULL;
    sess_entry *e = &s->ring[s->pop_seq % (uint64_t)s->cap];
    return e->stale ? NULL : e; /* a stale head is still being written */
}

static void fill_out(const stream_session *s, uint64_t index, int avatar_frame, int generated, int fade_q8,
                     const uint8_t *bgr, sess_frame *out) {
    const avatar *av = s->cfg.av;
    *out = (sess_frame){.index = index, .avatar_frame = avatar_frame, .generated = generated, .fade_q8 = fade_q8,
                        .pts_samples = index * SA_SAMPLES_PER_FRAME, .pts_ms = index * 40, .bgr = bgr,
                        .width = av->width, .height = av->height, .stride = (size_t)av->width * 3};
}

static void deliver(stream_session *s, sess_entry *e, sess_frame *out) {
    fill_out(s, e->index, e->avatar_frame, e->generated, e->fade_q8, e->bgr, out);
    sess_entry_events(s, e);
    e->state = ENTRY_EMPTY;
    s->held = 1;
    s->held_seq = s->pop_seq++;
    s->next_out = e->index + 1;
    s->st.frames_out++;
    if (e->generated) s->st.generated_out++;
    else s->st.idle_out++;
}

/* Realtime: may frame next_out be an idle filler? Only when no utterance frame has that index. */
static int filler_allowed(stream_session *s, const sess_entry *h) {
    if (h) return h->index > s->next_out;
    if (s->pop_seq != s->sub_seq) return 0; /* an interrupted frame still being written */
    return !s->utt_open || s->utt_base > s->next_out;
}

int sess_pop_frame(stream_session *s, uint64_t now_ns, sess_frame *out, ls_err *err) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->failed) {
        if (err) *err = s->fail_err;
        rc = -1;
        goto out;
    }
    s->held = 0;
    ls_err ferr = {0};
    if (s->cfg.pacing == SESS_PACE_REALTIME && s->cfg.auto_flush_ms > 0 && s->utt_open &&
        !sa_finished(s->audio) && now_ns > s->last_audio_ns + (uint64_t)s->cfg.auto_flush_ms * 1000000u &&
        sess_flush_locked(s, &ferr) != 0) {
        s->failed = 1;
        s->fail_err = ferr;
        if (err) *err = ferr;
        rc = -1;
        goto out;
    }
    sess_entry *h = head(s);
    if (s->cfg.pacing == SESS_PACE_BURST) {
        if (h && h->state == ENTRY_READY) {
            deliver(s, h, out);
            rc = 1;
        }
    } else {
        if (!s->clock_started) {
            s->clock_started = 1;
            s->next_due_ns = now_ns;
        }
        if (now_ns >= s->next_due_ns) {
            if (h && h->state == ENTRY_READY && h->index == s->next_out) {
                uint64_t late = now_ns - s->next_due_ns;
                if (late > SESS_FRAME_NS / 4) { /* rebase: the cadence goes on from here */
                    s->st.late_frames++;
                    if (late > s->st.max_late_ns) s->st.max_late_ns = late;
                    s->next_due_ns = now_ns;
                }
                deliver(s, h, out);
                rc = 1;
            } else if (filler_allowed(s, h)) {
                uint64_t idx = s->next_out;
                int af = avatar_frame_index((int64_t)idx, s->cfg.start_frame, s->cfg.av->frame_count);
                fill_out(s, idx, af, 0, 256, avatar_frame(s->cfg.av, af), out);
                s->next_out = idx + 1;
                if (s->next_index < s->next_out) s->next_index = s->next_out;
                s->st.frames_out++;
                s->st.fillers_out++;
                rc = 1;
            }
            if (rc == 1) s->next_due_ns += SESS_FRAME_NS;
        }
    }
    if (rc == 1 && sess_pump(s, &ferr) != 0) {
        s->failed = 1;
        s->fail_err = ferr;
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sess_release_frame(stream_session *s) {
    pthread_mutex_lock(&s->mu);
    if (s->held) {
        s->held = 0;
        ls_err ferr = {0};
        if (!s->failed && sess_pump(s, &ferr) != 0) { /* production may have waited for the slot */
            s->failed = 1;
            s->fail_err = ferr;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

uint64_t sess_next_due_ns(stream_session *s) {
    pthread_mutex_lock(&s->mu);
    uint64_t t = s->cfg.pacing == SESS_PACE_REALTIME ? s->next_due_ns : 0;
    pthread_mutex_unlock(&s->mu);
    return t;
}

int sess_pop_event(stream_session *s, sess_event *out) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->ev_len > 0) {
        *out = s->events[s->ev_head];
        s->ev_head = (s->ev_head + 1) % SESS_EVENTS;
        s->ev_len--;
        rc = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sess_wait_ready(stream_session *s, uint64_t timeout_ns) {
    uint64_t due = pipe_now_ns() + timeout_ns;
    struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u), .tv_nsec = (long)(due % 1000000000u)};
    pthread_mutex_lock(&s->mu);
    int ready = 0;
    for (;;) {
        sess_entry *h = head(s);
        ready = h && h->state == ENTRY_READY;
        int idle = !s->utt_open && s->inflight == 0 && !h;
        if (ready || idle || s->failed) break;
        /* An open, unflushed utterance whose frames wait for more audio: nothing will come. */
        if (s->utt_open && !sa_finished(s->audio) && s->inflight == 0 && !h) break;
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0) break;
    }
    pthread_mutex_unlock(&s->mu);
    return ready;
}

void sess_set_notify(stream_session *s, void (*fn)(void *ctx), void *ctx) {
    pthread_mutex_lock(&s->mu);
    s->notify = fn;
    s->notify_ctx = ctx;
    pthread_mutex_unlock(&s->mu);
}

int sess_busy(stream_session *s) {
    pthread_mutex_lock(&s->mu);
    int busy = s->utt_open || s->pop_seq != s->sub_seq;
    pthread_mutex_unlock(&s->mu);
    return busy;
}

void sess_stats_get(stream_session *s, sess_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->encoder_requests = sa_encoder_requests(s->audio);
    out->encoder_windows = sa_encoder_windows(s->audio);
    pthread_mutex_unlock(&s->mu);
}
