/* stream_session.h - one live session: audio chunks in, numbered frames out, paced or in bursts.
 *
 * Audio (s16le/f32le at the configured rate, any chunk size) is converted with a pcm_converter
 * and appended to the current utterance's context (stream_audio.h): mel, encoder windows and
 * encoder rows run over the utterance's whole audio, so with idle detection off the frames equal,
 * byte for byte, pipe_clip_features + pipe_render of the concatenated audio with start_frame =
 * cfg.start_frame + the utterance's first frame index. Frame i of an utterance is submitted to the
 * model's scheduler (stream_sched.h) as soon as its encoder rows i-9 .. i+lookahead-1 exist;
 * sess_flush ends the utterance (zero padding, clamped end windows, L frames). The next audio
 * starts a new utterance whose frames continue the session's frame numbering and ping-pong walk.
 *
 * Silence (cfg.idle_detect): a gate with hysteresis over the mean normalised mel value of each
 * frame's 16-row window (speech starts at >= gate_on, ends after gate_hold frames below gate_off;
 * generated frames start `preroll` frames before the onset, since the mouth moves ahead of the
 * sound). Idle frames are the avatar's original frame (no UNet run). The fade_frames generated
 * frames nearest an idle stretch (and the utterance edges) have their face box blended toward the
 * original frame, weight d/(fade_frames+1) at distance d: these are the only frames that differ
 * from the offline render.
 *
 * Output: a queue of at most queue_limit undelivered frames. In burst pacing a full queue drops
 * its oldest ready frame (counted in stats.dropped); in realtime pacing production waits for the
 * pacer instead (audio back-pressure: sess_push_audio fails with LS_EBUSY once backlog_s of audio
 * is unrendered). Realtime: sess_pop_frame releases frame n at t0 + 40 ms * n (t0 = first call),
 * fills gaps with idle frames while no utterance is due, places an utterance's first frame
 * realtime_delay frames after its first audio, and rebases the clock after a late frame.
 *
 * Threads: all functions may be called from any thread (a mutex guards the session); worker
 * threads complete frames. Memory: sess_create allocates everything (frame buffers for the queue,
 * jobs, audio rings); the rest allocates nothing, except libswresample's per-call buffers in
 * pcm_convert for rates other than 16 kHz (and those restart the resampler per chunk: send 16 kHz
 * for seamless audio). Errors: LS_EINVAL, LS_ENOMEM (admission), LS_EBUSY (back-pressure),
 * LS_EMODEL (a failed run; the session is then failed and sess_pop_frame returns -1). */
#ifndef LS_SERVER_STREAM_SESSION_H
#define LS_SERVER_STREAM_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "audio/pcm.h"
#include "avatar/avatar.h"
#include "common/err.h"
#include "infer/ort_model.h"
#include "server/stream_encb.h"
#include "server/stream_sched.h"

#define SESS_FRAME_NS 40000000ull /* 25 fps */

typedef enum { SESS_PACE_BURST = 0, SESS_PACE_REALTIME = 1 } sess_pacing;

typedef struct sess_cfg {
    const avatar *av;        /* borrowed; outlives the session */
    encb *encoder;           /* the encoder's batcher (stream_encb.h), borrowed */
    sched *sched;            /* the scheduler of the avatar's UNet */
    pcm_format format;       /* PCM_S16LE / PCM_F32LE */
    int sample_rate, channels;
    int64_t start_frame;     /* the ping-pong walk's start (>= 0) */
    sess_pacing pacing;
    int lookahead;           /* encoder rows after frame i's own (1..7; 7 = exact) */
    int idle_detect;         /* 0: every frame generated, no fades (offline-identical) */
    float gate_on, gate_off; /* mean normalised mel (-4 silence .. 4) */
    int gate_hold;           /* frames below gate_off that end speech */
    int preroll;             /* generated frames before a speech onset */
    int fade_frames;         /* cross-fade length at idle edges (preroll + fade_frames <= 15) */
    int queue_limit;         /* undelivered frames (2..256) */
    int max_inflight;        /* frames at the scheduler at once (1..queue_limit) */
    int backlog_s;           /* unrendered audio accepted (1..600 s) */
    int max_chunk_ms;        /* largest chunk accepted (10..60000) */
    int realtime_delay;      /* realtime: frames from an utterance's first audio to its first frame */
    int64_t auto_flush_ms;   /* realtime: flush an utterance after this long without audio; 0 = never */
} sess_cfg;

/* Defaults: s16le 16 kHz mono, burst, lookahead 7, idle detection on (gate_on -2.5, gate_off -3.0,
 * hold 6, preroll 2, fade 3), queue 32, in-flight 8, backlog 30 s, chunks up to 10 s, realtime
 * delay 10 frames, auto flush 300 ms. The caller sets av, encoder and sched. */
void sess_cfg_defaults(sess_cfg *c);

typedef enum {
    SESS_EV_SPEECH_STARTED = 1, /* the first generated frame of a speech stretch */
    SESS_EV_SPEECH_ENDED,       /* the first idle frame after one */
    SESS_EV_INTERRUPTED         /* the first frame after the interrupt */
} sess_event_type;

typedef struct sess_event {
    sess_event_type type;
    uint64_t frame;
} sess_event;

typedef struct sess_frame {
    uint64_t index;          /* frame number since the session started */
    int avatar_frame;
    int generated;           /* 1: UNet output, 0: the avatar's frame (idle) */
    int fade_q8;             /* generated frames: 256 = unblended */
    uint64_t pts_samples;    /* index * 640 (16 kHz) */
    uint64_t pts_ms;         /* index * 40 */
    const uint8_t *bgr;      /* width x height, valid until the next sess_pop_frame,
                                sess_release_frame or close */
    int width, height;
    size_t stride;
} sess_frame;

typedef struct sess_stats {
    uint64_t frames_out, generated_out, idle_out, fillers_out;
    uint64_t dropped;        /* ready frames dropped because the queue was full */
    uint64_t interrupted_frames; /* frames discarded by interrupts */
    uint64_t unet_jobs;      /* frames sent to the scheduler */
    uint64_t encoder_requests, encoder_windows; /* sent to the encoder batcher */
    uint64_t samples_in, utterances, interrupts;
    uint64_t late_frames, max_late_ns; /* realtime: frames released after their due time */
} sess_stats;

typedef struct stream_session stream_session;

/* Validates cfg, admits the session at its scheduler (LS_ENOMEM beyond the limits), allocates. */
stream_session *sess_create(const sess_cfg *cfg, ls_err *err);

/* Cancels everything (queued jobs are taken back, running ones awaited), leaves the scheduler
 * and frees. NULL is fine. */
void sess_close(stream_session *s);

/* Appends one chunk (whole sample frames, at most max_chunk_ms). now_ns: the caller's clock. */
int sess_push_audio(stream_session *s, const void *bytes, size_t n_bytes, uint64_t now_ns, ls_err *err);

/* Ends the utterance: its remaining frames are computed and queued. No-op when none is open. */
int sess_flush(stream_session *s, ls_err *err);

/* Drops the utterance's unrendered audio and every undelivered frame of it, back to idle. */
int sess_interrupt(stream_session *s, ls_err *err);

/* The next frame, if one is due at now_ns: 1 with *out filled, 0 if none, -1 with err if the
 * session failed. Burst: whenever the next frame in order is ready. */
int sess_pop_frame(stream_session *s, uint64_t now_ns, sess_frame *out, ls_err *err);

/* The caller is done with the last popped frame's pixels (it has copied or sent them). Until
 * then its buffer is kept, and in burst pacing a full queue cannot drop past it: production waits
 * instead. A consumer that stops popping after this call makes the session drop its oldest frames
 * (burst), as the queue limit says, rather than stall. */
void sess_release_frame(stream_session *s);

/* Realtime: the time the next frame is due (call sess_pop_frame then). Burst: 0. */
uint64_t sess_next_due_ns(stream_session *s);

/* 1 with *out filled, 0 when no event is waiting. Speech events come out with their frame. */
int sess_pop_event(stream_session *s, sess_event *out);

/* Blocks until the next frame in order is ready, the session is idle (nothing pending) or failed,
 * or timeout_ns passed. Returns 1 if a frame is ready. For callers without a notifier (tests). */
int sess_wait_ready(stream_session *s, uint64_t timeout_ns);

/* fn(ctx) is called from a worker thread (no lock held) whenever a frame becomes ready. */
void sess_set_notify(stream_session *s, void (*fn)(void *ctx), void *ctx);

/* 1 while an utterance has audio or frames not yet delivered. */
int sess_busy(stream_session *s);

void sess_stats_get(stream_session *s, sess_stats *out);

#endif
