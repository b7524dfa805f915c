/* stream_handler.c - lipsync.v1.LipSync/Stream: one live session (stream_session.h) driven over a
 * bidirectional gRPC stream (stream_call.h), on the call's own thread.
 *
 * Loop: take the next request (one receive outstanding; an audio chunk the session refuses with
 * LS_EBUSY is kept and no further receive is posted until it goes in: that is the back-pressure
 * gRPC's flow control carries to the client), then, when no send is outstanding, send the next of:
 * an event, the statistics (every stats_interval_ms, on STATS, and once before the end), a frame
 * (sess_pop_frame; JPEG encoded here, off the I/O thread). The frame popped last is held (the
 * session's burst queue waits behind it rather than drop: a reader that lags loses nothing) until
 * the next pop, or until its send has been outstanding stream.stalled_send_ms (default 1 s: the
 * reader stopped, or takes longer than that per message): then it is released
 * (sess_release_frame) and a burst session drops its oldest frames. Realtime: a due frame goes before
 * periodic statistics and waits for the send slot; it is dropped (slow reader) and counted only
 * when the previous send is still outstanding a frame period later. Sleeps until a completion, the session's
 * notify (a frame became ready), the next due frame or a 50 ms poll (server shutdown).
 * Slow reader: gRPC core completes a SEND_MESSAGE only when its last byte has passed HTTP/2 flow
 * control (chttp2_transport.cc send_message_locked puts the completion on on_flow_controlled_cbs,
 * on_write_finished_cbs with GRPC_WRITE_THROUGH; writing.cc runs them as bytes flow), and this
 * handler keeps one send outstanding. So for a client that stops reading the server holds at most
 * the session's queue (stream.queue_limit frames, allocated at start), one message inside gRPC and
 * what fits the client's window; burst sessions drop the rest (counted) once the send has been
 * outstanding stream.stalled_send_ms, realtime ones drop due frames. Measured, RAW 320x240 frames (230,400 bytes), 64 KiB window, queue 16: 17 frames
 * delivered of 147 (6 s) and of 497 (20 s); 1 MiB window: 21 (4 more fit). tests/stream_rpc_test.py.
 * Memory: per call, the session, a JPEG encoder, a frame buffer and an arena for the unpacked
 * requests, all made at config time; replies are gRPC slices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/imgfile.h"
#include "pipeline/encode.h"
#include "lipsync/v1/lipsync.pb-c.h"
#include "server/app_priv.h"
#include "server/stream_call.h"
#include "server/stream_models.h"
#include "server/stream_session.h"

#define POLL_NS 50000000LL
#define STREAM_FRAME_NS 40000000ull /* one frame period at 25 fps */
#define STREAM_CONFIG_NS 10000000000LL /* a stream must send its config within 10 s */

typedef struct sctx {
    app *a;
    srv_stream *st;
    reg_lease lease;
    int leased;
    sched *sc;
    encb *eb;                 /* the encoder's batcher */
    stream_session *s;
    pipe_jpeg_enc *jpeg;    /* through the avatar's spliced-JPEG set, as Render encodes */
    int quality;
    uint8_t *pix;             /* RAW / FACE_PATCH output, width x height x 3 */
    ls_arena arena;
    ProtobufCAllocator pb;
    int output;               /* Lipsync__V1__OutputKind */
    int64_t stats_ns;
    uint64_t send_dropped, frames_sent;
    int holding;              /* the last popped frame is not yet released to the session */
    int64_t send_ns;          /* when the outstanding (or last) send began */
    int64_t first_audio_ns, first_gen_ns;
    grpc_status_code code;    /* of the last failure */
    char msg[512];
} sctx;

static void *pb_alloc(void *data, size_t size) { return arena_alloc(data, size ? size : 1, 16); }
static void pb_free(void *data, void *ptr) { (void)data, (void)ptr; }

static grpc_status_code fail_msg(sctx *x, grpc_status_code code, const char *msg) {
    snprintf(x->msg, sizeof x->msg, "%s", msg);
    return x->code = code;
}

static grpc_status_code fail_err(sctx *x, const ls_err *err) {
    grpc_status_code c = srv_status_from_err(err->code);
    return fail_msg(x, c == GRPC_STATUS_OK ? GRPC_STATUS_INTERNAL : c, err->msg);
}

/* Sends one response; 0 sent, -1 the call is over. (Only called with no send outstanding.) */
static int send_resp(sctx *x, const Lipsync__V1__StreamResponse *r) {
    size_t n = protobuf_c_message_get_packed_size(&r->base);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(&r->base, GRPC_SLICE_START_PTR(s));
    x->send_ns = srv_stream_now_ns();
    int rc = srv_stream_write(x->st, s);
    if (rc == 1) grpc_slice_unref(s);
    return rc == 0 ? 0 : -1;
}

static int send_stats(sctx *x) {
    sess_stats ss;
    sched_stats sch;
    encb_stats eb;
    sess_stats_get(x->s, &ss);
    sched_stats_get(x->sc, &sch);
    encb_stats_get(x->eb, &eb);
    Lipsync__V1__StreamStats m = LIPSYNC__V1__STREAM_STATS__INIT;
    m.frames_out = (int64_t)x->frames_sent;
    m.frames_generated = (int64_t)ss.generated_out;
    m.frames_idle = (int64_t)(ss.idle_out + ss.fillers_out);
    m.frames_dropped = (int64_t)(ss.dropped + x->send_dropped);
    m.unet_jobs = (int64_t)ss.unet_jobs;
    m.unet_runs = (int64_t)sch.runs;
    m.unet_items = (int64_t)sch.items;
    m.queue_depth = sch.queued;
    m.sessions = sch.sessions;
    m.latency_ms = x->first_gen_ns ? (float)(x->first_gen_ns - x->first_audio_ns) / 1e6f : 0.0f;
    m.samples_in = (int64_t)ss.samples_in;
    m.late_frames = (int64_t)ss.late_frames;
    m.encoder_requests = (int64_t)ss.encoder_requests;
    m.encoder_windows = (int64_t)ss.encoder_windows;
    m.encoder_runs = (int64_t)eb.runs;
    m.encoder_run_windows = (int64_t)eb.windows;
    m.encoder_shared_runs = (int64_t)eb.shared_runs;
    m.unet_overlapped_runs = (int64_t)sch.overlapped_runs;
    Lipsync__V1__StreamResponse r = LIPSYNC__V1__STREAM_RESPONSE__INIT;
    r.msg_case = LIPSYNC__V1__STREAM_RESPONSE__MSG_STATS;
    r.stats = &m;
    return send_resp(x, &r);
}

static int send_event(sctx *x, const sess_event *e) {
    Lipsync__V1__StreamEvent m = LIPSYNC__V1__STREAM_EVENT__INIT;
    m.kind = e->type == SESS_EV_SPEECH_STARTED ? LIPSYNC__V1__STREAM_EVENT__KIND__SPEECH_STARTED
             : e->type == SESS_EV_SPEECH_ENDED ? LIPSYNC__V1__STREAM_EVENT__KIND__SPEECH_ENDED
                                               : LIPSYNC__V1__STREAM_EVENT__KIND__INTERRUPTED;
    m.frame = (int64_t)e->frame;
    Lipsync__V1__StreamResponse r = LIPSYNC__V1__STREAM_RESPONSE__INIT;
    r.msg_case = LIPSYNC__V1__STREAM_RESPONSE__MSG_EVENT;
    r.event = &m;
    return send_resp(x, &r);
}

static int send_frame(sctx *x, const sess_frame *f, ls_err *err) {
    Lipsync__V1__StreamFrame m = LIPSYNC__V1__STREAM_FRAME__INIT;
    Lipsync__V1__Box b = LIPSYNC__V1__BOX__INIT;
    const uint8_t *data = x->pix;
    size_t len;
    int w = f->width, h = f->height;
    if (x->output == LIPSYNC__V1__OUTPUT_KIND__OUTPUT_KIND_JPEG) {
        pipe_frame pf = {.index = f->index, .avatar_frame = f->avatar_frame, .bgr = f->bgr, .width = w,
                         .height = h, .stride = f->stride, .box = x->lease.av->boxes[f->avatar_frame]};
        if (pipe_jpeg_encode(x->jpeg, x->lease.jpeg, &pf, x->quality, &data, &len, err) != 0) return -2;
    } else if (x->output == LIPSYNC__V1__OUTPUT_KIND__OUTPUT_KIND_RAW_RGB24) {
        img_bgr_to_rgb(f->bgr, f->stride, w, h, x->pix);
        len = (size_t)w * h * 3;
    } else {
        ls_box bx = x->lease.av->boxes[f->avatar_frame];
        w = box_width(bx), h = box_height(bx);
        img_bgr_to_rgb(f->bgr + (size_t)bx.y1 * f->stride + (size_t)bx.x1 * 3, f->stride, w, h, x->pix);
        len = (size_t)w * h * 3;
        b.x1 = bx.x1, b.y1 = bx.y1, b.x2 = bx.x2, b.y2 = bx.y2;
        m.box = &b;
    }
    m.index = (int64_t)f->index;
    m.avatar_frame = f->avatar_frame;
    m.pts_samples = (int64_t)f->pts_samples;
    m.pts_ms = (int64_t)f->pts_ms;
    m.generated = f->generated != 0;
    m.data = (ProtobufCBinaryData){.len = len, .data = (uint8_t *)data};
    m.width = w;
    m.height = h;
    Lipsync__V1__StreamResponse r = LIPSYNC__V1__STREAM_RESPONSE__INIT;
    r.msg_case = LIPSYNC__V1__STREAM_RESPONSE__MSG_FRAME;
    r.frame = &m;
    if (f->generated && !x->first_gen_ns) x->first_gen_ns = srv_stream_now_ns();
    x->frames_sent++;
    return send_resp(x, &r);
}

static void on_ready(void *ctx) { srv_stream_wake(ctx); }

/* The config message -> avatar lease, scheduler, session. */
static grpc_status_code start(sctx *x, const Lipsync__V1__StreamConfig *c) {
    ls_err err = {0};
    const srv_config *cfg = x->a->cfg;
    if (cfg->stream_max_sessions <= 0)
        return fail_msg(x, GRPC_STATUS_RESOURCE_EXHAUSTED, "live sessions are disabled (stream.max_sessions 0)");
    if (val_avatar_id(c->avatar_id, &err) != 0) return fail_err(x, &err);
    if (c->encoding != LIPSYNC__V1__AUDIO_ENCODING__AUDIO_ENCODING_S16LE &&
        c->encoding != LIPSYNC__V1__AUDIO_ENCODING__AUDIO_ENCODING_F32LE)
        return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.encoding must be S16LE or F32LE");
    if (c->sample_rate < 8000 || c->sample_rate > 48000)
        return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.sample_rate must be 8000..48000");
    if (c->output < 0 || c->output > 2) return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.output unknown");
    if (c->jpeg_quality < 0 || c->jpeg_quality > 100)
        return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.jpeg_quality must be 0..100");
    if (c->start_frame < 0) return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.start_frame must be >= 0");
    if (c->lookahead < 0 || c->lookahead > 7)
        return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.lookahead must be 0..7");
    if (c->pacing != LIPSYNC__V1__PACING__PACING_BURST && c->pacing != LIPSYNC__V1__PACING__PACING_REALTIME)
        return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.pacing unknown");
    if (c->stats_interval_ms < 0 || c->stats_interval_ms > 3600000)
        return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config.stats_interval_ms must be 0..3600000");
    x->output = c->output;
    x->stats_ns = (int64_t)(c->stats_interval_ms ? c->stats_interval_ms : 1000) * 1000000;
    if (reg_acquire(x->a->reg, c->avatar_id, &x->lease, &err) != 0) return fail_err(x, &err);
    x->leased = 1;
    const avatar *av = x->lease.av;
    if (!(x->sc = app_stream_acquire(x->a->stream, reg_model_ort(x->lease.unet), &err))) return fail_err(x, &err);
    if (!(x->eb = app_stream_acquire_encoder(x->a->stream, reg_model_ort(x->lease.encoder), &err)))
        return fail_err(x, &err);
    sess_cfg sc;
    sess_cfg_defaults(&sc);
    sc.av = av;
    sc.encoder = x->eb;
    sc.sched = x->sc;
    sc.format = c->encoding == LIPSYNC__V1__AUDIO_ENCODING__AUDIO_ENCODING_S16LE ? PCM_S16LE : PCM_F32LE;
    sc.sample_rate = c->sample_rate;
    sc.channels = 1;
    sc.start_frame = c->start_frame;
    sc.pacing = c->pacing == LIPSYNC__V1__PACING__PACING_REALTIME ? SESS_PACE_REALTIME : SESS_PACE_BURST;
    sc.lookahead = c->lookahead ? c->lookahead : 7;
    /* Realtime: an utterance's first frame goes out when its audio can exist (frame 0 needs 450 ms
     * at look-ahead 7, 40 ms less per step: lookahead + 5 frame periods, rounded up) plus 2 periods
     * for compute and chunk jitter: 14 frames (560 ms) exact, 10 (400 ms) at look-ahead 3. */
    sc.realtime_delay = sc.lookahead + 7;
    sc.idle_detect = c->idle_detect;
    sc.queue_limit = cfg->stream_queue_limit;
    /* A pipelined scheduler: two batches (one runs while the next is prepared, so that one
     * session alone keeps it busy), but at most half the queue: the other half holds finished
     * frames while the client reads (a full queue of them drops the oldest, burst). */
    if (sched_pipelined(x->sc)) {
        int two = 2 * cfg->stream_max_batch;
        if (two > sc.max_inflight) sc.max_inflight = two;
        if (sc.max_inflight > sc.queue_limit / 2) sc.max_inflight = sc.queue_limit / 2;
    }
    if (sc.max_inflight > sc.queue_limit) sc.max_inflight = sc.queue_limit;
    if (!(x->s = sess_create(&sc, &err))) return fail_err(x, &err);
    sess_set_notify(x->s, on_ready, x->st);
    x->quality = c->jpeg_quality ? c->jpeg_quality : cfg->jpeg_quality;
    x->pix = malloc((size_t)av->width * av->height * 3);
    if (!x->pix || !(x->jpeg = pipe_jpeg_enc_create(av->width, av->height, &err)))
        return err.code ? fail_err(x, &err) : fail_msg(x, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    srv_stream_note(x->st, "avatar=%s pacing=%s", c->avatar_id, sc.pacing ? "realtime" : "burst");
    return GRPC_STATUS_OK;
}

/* One request after the config: 0 done, 1 the session is busy (keep it), -1 status set. */
static int apply(sctx *x, const Lipsync__V1__StreamRequest *r, int *closing, int *want_stats) {
    ls_err err = {0};
    int64_t now = srv_stream_now_ns();
    switch (r->msg_case) {
    case LIPSYNC__V1__STREAM_REQUEST__MSG_AUDIO:
        if (sess_push_audio(x->s, r->audio->data.data, r->audio->data.len, (uint64_t)now, &err) != 0) {
            if (err.code == LS_EBUSY) return 1;
            fail_err(x, &err);
            return -1;
        }
        if (!x->first_audio_ns && r->audio->data.len) x->first_audio_ns = now;
        return 0;
    case LIPSYNC__V1__STREAM_REQUEST__MSG_CONTROL:
        switch (r->control->kind) {
        case LIPSYNC__V1__CONTROL__KIND__FLUSH: if (sess_flush(x->s, &err) != 0) break; return 0;
        case LIPSYNC__V1__CONTROL__KIND__INTERRUPT: if (sess_interrupt(x->s, &err) != 0) break; return 0;
        case LIPSYNC__V1__CONTROL__KIND__STATS: *want_stats = 1; return 0;
        case LIPSYNC__V1__CONTROL__KIND__CLOSE: *closing = 1; return sess_flush(x->s, &err) ? (fail_err(x, &err), -1) : 0;
        default: fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "control.kind unknown"); return -1;
        }
        fail_err(x, &err);
        return -1;
    case LIPSYNC__V1__STREAM_REQUEST__MSG_CONFIG:
        fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "config may only be the first message");
        return -1;
    default: fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "empty StreamRequest"); return -1;
    }
}

/* Takes the next request into *out (unpacked over the arena): 1, 0 none yet, -1 end of stream,
 * -2 malformed (status set). */
static int next_request(sctx *x, Lipsync__V1__StreamRequest **out) {
    const uint8_t *d;
    size_t n;
    int r = srv_stream_take(x->st, &d, &n);
    if (r != 1) return r;
    arena_reset(&x->arena);
    *out = (Lipsync__V1__StreamRequest *)protobuf_c_message_unpack(&lipsync__v1__stream_request__descriptor,
                                                                   &x->pb, n, d);
    if (!*out) return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "malformed StreamRequest"), -2;
    return 1;
}

/* Sends what is due, if no send is outstanding: events, statistics, a frame. 1 sent, 0 nothing,
 * -1 the call is over or the session failed (status set). */
static int output(sctx *x, int *want_stats, int64_t *next_stats, int64_t now) {
    ls_err err = {0};
    sess_event e;
    sess_frame f;
    uint64_t due = sess_next_due_ns(x->s); /* 0 unless realtime pacing holds a frame */
    if (srv_stream_writing(x->st)) {
        /* A reader that stopped: let the session drop past the frame in flight (burst) instead of
         * waiting behind it. A reader that merely lags keeps every frame. */
        if (x->holding && now - x->send_ns >= (int64_t)x->a->cfg->stream_stalled_send_ms * 1000000) {
            sess_release_frame(x->s);
            x->holding = 0;
        }
        /* Realtime and the client has still not taken the last message a whole frame period after
         * a frame fell due: that frame is dropped and counted, so a slow reader never makes the
         * session's queue grow. A send that is merely in flight at the due time only delays it. */
        if (due && due + STREAM_FRAME_NS <= (uint64_t)now) {
            int r = sess_pop_frame(x->s, (uint64_t)now, &f, &err);
            if (r < 0) return fail_err(x, &err), -1;
            if (r == 1) x->send_dropped++;
        }
        return 0;
    }
    if (sess_pop_event(x->s, &e)) return send_event(x, &e) ? -1 : 1;
    /* A due frame goes before periodic statistics, so they never push a frame out of its slot. */
    if ((*want_stats || now >= *next_stats) && !(due && due <= (uint64_t)now)) {
        *want_stats = 0;
        *next_stats = now + x->stats_ns;
        return send_stats(x) ? -1 : 1;
    }
    int r = sess_pop_frame(x->s, (uint64_t)now, &f, &err);
    if (r < 0) return fail_err(x, &err), -1;
    if (r == 0) return 0;
    r = send_frame(x, &f, &err);
    x->holding = 1;
    if (r == -2) return fail_err(x, &err), -1;
    return r ? -1 : 1;
}

static grpc_status_code run(sctx *x) {
    Lipsync__V1__StreamRequest *req = NULL;
    srv_stream_read(x->st);
    int r;
    int64_t config_by = srv_stream_now_ns() + STREAM_CONFIG_NS;
    while ((r = next_request(x, &req)) == 0) {
        if (srv_stream_cancelled(x->st)) return fail_msg(x, GRPC_STATUS_CANCELLED, "ended before the config");
        if (srv_stream_now_ns() > config_by)
            return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "no config message within 10 s");
        srv_stream_wait(x->st, srv_stream_now_ns() + POLL_NS);
    }
    if (r == -2) return x->code;
    if (r < 0) return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "stream ended before its config");
    if (req->msg_case != LIPSYNC__V1__STREAM_REQUEST__MSG_CONFIG)
        return fail_msg(x, GRPC_STATUS_INVALID_ARGUMENT, "the first StreamRequest must be config");
    if (start(x, req->config) != GRPC_STATUS_OK) return x->code;
    req = NULL;
    srv_stream_read(x->st);
    int closing = 0, want_stats = 0, final_stats = 0;
    int64_t next_stats = srv_stream_now_ns() + x->stats_ns;
    for (;;) {
        int why = srv_stream_cancelled(x->st);
        if (why == 3) return fail_msg(x, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        if (why) return fail_msg(x, why == 2 ? GRPC_STATUS_DEADLINE_EXCEEDED : GRPC_STATUS_CANCELLED,
                                 why == 2 ? "deadline exceeded" : "cancelled by the client");
        int progress = 0;
        if (!req && !closing) {
            r = next_request(x, &req);
            if (r == -2) return x->code;
            if (r < 0) { /* half-close: the same as CLOSE */
                ls_err err = {0};
                closing = 1;
                if (sess_flush(x->s, &err) != 0) return fail_err(x, &err);
            }
        }
        if (req) {
            int a = apply(x, req, &closing, &want_stats);
            if (a < 0) return x->code;
            if (a == 0) {
                req = NULL;
                progress = 1;
                if (!closing) srv_stream_read(x->st);
            }
        }
        int64_t now = srv_stream_now_ns();
        int o = output(x, &want_stats, &next_stats, now);
        if (o < 0) return x->code ? x->code : GRPC_STATUS_CANCELLED;
        progress |= o;
        if (closing && !req && !progress && !sess_busy(x->s) && !srv_stream_writing(x->st)) {
            if (final_stats) return GRPC_STATUS_OK;
            final_stats = 1;
            if (send_stats(x)) return x->code ? x->code : GRPC_STATUS_CANCELLED;
            continue;
        }
        if (progress) continue;
        int64_t deadline = now + POLL_NS;
        int64_t due = (int64_t)sess_next_due_ns(x->s);
        if (srv_stream_writing(x->st)) {
            /* The send's completion wakes this thread; only a frame's drop time needs a timer. */
            if (due && due + (int64_t)STREAM_FRAME_NS < deadline) deadline = due + (int64_t)STREAM_FRAME_NS;
        } else {
            if (next_stats < deadline) deadline = next_stats;
            if (due && due < deadline) deadline = due;
        }
        srv_stream_wait(x->st, deadline);
    }
}

int app_v1_stream(void *ctx, srv_stream *st) {
    sctx x = {.a = ctx, .st = st, .code = GRPC_STATUS_OK};
    size_t arena_bytes = 2 * srv_stream_max_message(st) + (1u << 16);
    if (arena_init(&x.arena, arena_bytes) != 0) {
        srv_stream_finish(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "cannot allocate the request arena");
        return 0;
    }
    x.pb = (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = &x.arena};
    grpc_status_code code = run(&x);
    if (x.s) {
        sess_stats ss;
        sess_stats_get(x.s, &ss);
        srv_stream_note(st, "frames=%llu generated=%llu dropped=%llu", (unsigned long long)x.frames_sent,
                        (unsigned long long)ss.generated_out, (unsigned long long)(ss.dropped + x.send_dropped));
    }
    /* The session first (it leaves the scheduler and the batcher), then those, then the lease. */
    sess_close(x.s);
    app_stream_release(x.a->stream, x.sc);
    app_stream_release_encoder(x.a->stream, x.eb);
    if (x.leased) reg_release(x.a->reg, &x.lease, NULL);
    pipe_jpeg_enc_free(x.jpeg);
    free(x.pix);
    arena_free(&x.arena);
    srv_stream_finish(st, code, code == GRPC_STATUS_OK ? "" : x.msg);
    return 0;
}
