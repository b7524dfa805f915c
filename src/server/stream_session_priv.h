/* stream_session_priv.h - the session's state, shared by stream_session.c (audio, gate, frame
 * production) and stream_pace.c (delivery, pacing, events). Not for other modules. */
#ifndef LS_SERVER_STREAM_SESSION_PRIV_H
#define LS_SERVER_STREAM_SESSION_PRIV_H

#include <pthread.h>

#include "server/stream_audio.h"
#include "server/stream_session.h"

#define SESS_EVENTS 64

enum { ENTRY_EMPTY = 0, ENTRY_PENDING, ENTRY_READY };
enum { ENTRY_EV_STARTED = 1, ENTRY_EV_ENDED = 2, ENTRY_EV_ENDED_AFTER = 4 };

/* One undelivered frame, in the output ring by sequence number. */
typedef struct sess_entry {
    int state;
    int stale;               /* interrupted: skipped when no longer pending */
    int failed;
    uint64_t index;
    int avatar_frame, generated, fade_q8, events;
    const uint8_t *bgr;      /* buf, or the avatar's frame for idle frames */
    uint8_t *buf;            /* width x height x 3, written by a worker */
} sess_entry;

typedef struct sess_job {
    sched_job j;             /* first: the scheduler's view */
    stream_session *s;
    uint64_t seq;
    struct sess_job *free_next;
} sess_job;

struct stream_session {
    sess_cfg cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pcm_stream *pcm;         /* the utterance's audio -> 16 kHz, resampler state kept across chunks */
    float *chunk;            /* converted chunk, max_chunk samples */
    size_t max_chunk;
    sa_ctx *audio;
    int admitted;

    /* the utterance */
    int utt_open;            /* audio pushed, not all frames submitted */
    uint64_t utt_base;       /* session index of its frame 0 */
    size_t next_sub;         /* its next frame to submit */
    uint64_t last_audio_ns;
    /* gate, by utterance frame */
    size_t gate_n;           /* windows evaluated */
    unsigned char *speaking; /* gate_cap decisions, by window index modulo gate_cap */
    size_t gate_cap;
    int gate_on_state, quiet_run;
    int prev_generated;      /* of the last submitted frame */

    /* output ring */
    sess_entry *ring;
    int cap;
    uint64_t pop_seq, sub_seq;
    int held;                /* entry held_seq is still the caller's (last popped) */
    uint64_t held_seq;
    uint64_t next_index;     /* next session frame index to assign */
    uint64_t next_out;       /* next frame index to deliver */

    /* jobs */
    sess_job *jobs;
    float *blocks;
    sess_job *free_jobs;
    int inflight;

    /* pacing */
    int clock_started;
    uint64_t next_due_ns;
    int late_counted;

    sess_event events[SESS_EVENTS];
    int ev_head, ev_len;
    int failed;
    ls_err fail_err;
    sess_stats st;
    void (*notify)(void *);
    void *notify_ctx;
};

/* Submits what can be submitted; session lock held. */
int sess_pump(stream_session *s, ls_err *err);
void sess_push_event(stream_session *s, sess_event_type type, uint64_t frame);
/* Queues the speech events carried by a delivered or dropped entry. */
void sess_entry_events(stream_session *s, const sess_entry *e);
/* Advances pop_seq over interrupted entries that no worker still writes. */
void sess_skip_stale(stream_session *s);
int sess_flush_locked(stream_session *s, ls_err *err);

#endif
