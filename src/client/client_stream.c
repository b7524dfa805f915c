/* client_stream.c - the bidirectional Stream call of `lipsync client stream` on the gRPC core C API:
 * one thread drives a next-style completion queue; the sender (config, audio chunks on a wall
 * clock or back to back, FLUSH, CLOSE + half-close) and the receiver (frames, events, statistics)
 * each keep one operation in flight and are restarted from the loop when theirs completes. */
#include "client/client_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "client/client_bench.h"
#include "lipsync/v1/lipsync.pb-c.h"

#define STREAM_METHOD "/lipsync.v1.LipSync/Stream"
#define SAMPLES_PER_MS 16

/* Completion tags: which of the call's three kinds of operation finished. */
enum { TAG_SEND = 1, TAG_RECV, TAG_STATUS };
#define TAG(t) ((void *)(intptr_t)(t))

/* What the sender sends next. */
enum { SEND_CONFIG, SEND_AUDIO, SEND_FLUSH, SEND_CLOSE, SEND_DONE };

typedef struct loop {
    const cli_stream_cfg *cfg;
    cli_stream_result *r;
    grpc_call *call;
    int step;                    /* SEND_* */
    size_t next_sample;          /* first sample of the next chunk */
    size_t chunk_samples;
    double t0;                   /* when the first audio chunk was sent (cli_now_ms); 0 = not yet */
    int send_busy, recv_busy, status_done, cancelled;
    grpc_byte_buffer *send_buf, *recv_buf;
    uint8_t *f32;                /* one chunk as F32LE bytes */
    size_t cap_frames;
    double last_frame_ms, last_rx_ms;
    int64_t last_index;
    double *intervals;           /* |interval - 40| per consecutive frame pair */
} loop;

/* Starts one batch; a failure here is a bug in the op sequence, reported as such. */
static int start_batch(loop *L, const grpc_op *ops, size_t n, int tag, ls_err *err) {
    grpc_call_error e = grpc_call_start_batch(L->call, ops, n, TAG(tag), NULL);
    if (e != GRPC_CALL_OK)
        return ls_fail(err, LS_EINTERNAL, "Stream: cannot start an operation: %s", grpc_call_error_to_string(e));
    return 0;
}

/* Packs req and starts SEND_MESSAGE (plus the initial metadata with the config, plus the half-close
 * with CLOSE). */
static int send_msg(loop *L, const Lipsync__V1__StreamRequest *req, int first, int last,
                    const grpc_metadata *md, size_t n_md, ls_err *err) {
    size_t n = protobuf_c_message_get_packed_size(&req->base);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(&req->base, GRPC_SLICE_START_PTR(s));
    L->send_buf = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op ops[3];
    size_t k = 0;
    memset(ops, 0, sizeof ops);
    if (first) {
        ops[k].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[k].data.send_initial_metadata.count = n_md;
        ops[k++].data.send_initial_metadata.metadata = n_md ? (grpc_metadata *)md : NULL;
    }
    ops[k].op = GRPC_OP_SEND_MESSAGE;
    ops[k++].data.send_message.send_message = L->send_buf;
    if (last) ops[k++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    L->send_busy = 1;
    return start_batch(L, ops, k, TAG_SEND, err);
}

/* Sends the next message if the sender may: 0 sent or nothing to do, -1 error. */
static int sender(loop *L, double now, const grpc_metadata *md, size_t n_md, ls_err *err) {
    if (L->send_busy || L->step == SEND_DONE || L->status_done) return 0;
    const cli_stream_cfg *c = L->cfg;
    Lipsync__V1__StreamRequest req = LIPSYNC__V1__STREAM_REQUEST__INIT;
    if (L->step == SEND_CONFIG) {
        Lipsync__V1__StreamConfig sc = LIPSYNC__V1__STREAM_CONFIG__INIT;
        sc.avatar_id = (char *)c->avatar;
        sc.encoding = LIPSYNC__V1__AUDIO_ENCODING__AUDIO_ENCODING_F32LE;
        sc.sample_rate = 16000;
        sc.output = LIPSYNC__V1__OUTPUT_KIND__OUTPUT_KIND_JPEG;
        sc.jpeg_quality = c->jpeg_quality;
        sc.pacing = c->pacing_realtime ? LIPSYNC__V1__PACING__PACING_REALTIME : LIPSYNC__V1__PACING__PACING_BURST;
        sc.lookahead = c->lookahead;
        sc.idle_detect = c->idle_detect;
        sc.stats_interval_ms = c->stats_ms;
        req.msg_case = LIPSYNC__V1__STREAM_REQUEST__MSG_CONFIG;
        req.config = &sc;
        L->step = SEND_AUDIO;
        return send_msg(L, &req, 1, 0, md, n_md, err);
    }
    if (L->step == SEND_AUDIO) {
        size_t i = L->r->chunks_sent;
        if (L->t0 > 0 && c->realtime_send) {
            double due = L->t0 + (double)i * c->chunk_ms;
            if (now < due) return 0;
            if (now > due + c->chunk_ms) L->r->late_chunks++;
        }
        size_t b = L->next_sample, e = b + L->chunk_samples;
        if (e > c->n_samples) e = c->n_samples;
        for (size_t k = b; k < e; k++) { /* F32LE whatever the host byte order */
            uint32_t u;
            memcpy(&u, &c->pcm[k], 4);
            uint8_t *o = L->f32 + 4 * (k - b);
            o[0] = (uint8_t)u, o[1] = (uint8_t)(u >> 8), o[2] = (uint8_t)(u >> 16), o[3] = (uint8_t)(u >> 24);
        }
        Lipsync__V1__AudioChunk ac = LIPSYNC__V1__AUDIO_CHUNK__INIT;
        ac.data = (ProtobufCBinaryData){.len = 4 * (e - b), .data = L->f32};
        req.msg_case = LIPSYNC__V1__STREAM_REQUEST__MSG_AUDIO;
        req.audio = &ac;
        if (L->t0 == 0) L->t0 = now;
        L->next_sample = e;
        L->r->chunks_sent++;
        if (e >= c->n_samples) L->step = SEND_FLUSH;
        return send_msg(L, &req, 0, 0, NULL, 0, err);
    }
    Lipsync__V1__Control ctl = LIPSYNC__V1__CONTROL__INIT;
    int last = L->step == SEND_CLOSE;
    ctl.kind = last ? LIPSYNC__V1__CONTROL__KIND__CLOSE : LIPSYNC__V1__CONTROL__KIND__FLUSH;
    req.msg_case = LIPSYNC__V1__STREAM_REQUEST__MSG_CONTROL;
    req.control = &ctl;
    L->step = last ? SEND_DONE : SEND_CLOSE;
    return send_msg(L, &req, 0, last, NULL, 0, err);
}

static int post_recv(loop *L, int first, ls_err *err, grpc_metadata_array *initial) {
    grpc_op ops[2];
    size_t k = 0;
    memset(ops, 0, sizeof ops);
    if (first) {
        ops[k].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[k++].data.recv_initial_metadata.recv_initial_metadata = initial;
    }
    ops[k].op = GRPC_OP_RECV_MESSAGE;
    ops[k++].data.recv_message.recv_message = &L->recv_buf;
    L->recv_busy = 1;
    return start_batch(L, ops, k, TAG_RECV, err);
}

static int add_frame(loop *L, const Lipsync__V1__StreamFrame *f, double now, ls_err *err) {
    cli_stream_result *r = L->r;
    if (r->n_frames == L->cap_frames) {
        size_t cap = L->cap_frames ? 2 * L->cap_frames : 256;
        cli_stream_frame *nf = realloc(r->frames, cap * sizeof *nf);
        double *ni = realloc(L->intervals, cap * sizeof *ni);
        if (nf) r->frames = nf;
        if (ni) L->intervals = ni;
        if (!nf || !ni) return ls_fail(err, LS_ENOMEM, "out of memory for %zu frames", cap);
        L->cap_frames = cap;
    }
    cli_stream_frame *o = &r->frames[r->n_frames];
    *o = (cli_stream_frame){.index = f->index, .avatar_frame = f->avatar_frame,
                            .generated = f->generated, .t_ms = L->t0 > 0 ? now - L->t0 : 0};
    if (L->cfg->keep_frames && f->data.len) {
        if (!(o->jpeg = malloc(f->data.len))) return ls_fail(err, LS_ENOMEM, "out of memory for a frame");
        memcpy(o->jpeg, f->data.data, f->data.len);
        o->len = f->data.len;
    }
    if (r->n_frames > 0) {
        if (f->index > L->last_index + 1) r->index_gaps += (size_t)(f->index - L->last_index - 1);
        L->intervals[r->n_intervals++] = fabs(now - L->last_frame_ms - CLI_FRAME_MS);
    }
    L->last_index = f->index;
    L->last_frame_ms = now;
    r->n_frames++;
    if (f->generated) {
        r->n_generated++;
        if (r->first_generated_index < 0) {
            r->first_generated_index = f->index;
            r->first_frame_ms = L->t0 > 0 ? now - L->t0 : 0;
        }
    } else {
        r->n_idle++;
    }
    return 0;
}

/* Unpacks and records one received message. */
static int on_message(loop *L, grpc_byte_buffer *bb, double now, ls_err *err) {
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb)) return ls_fail(err, LS_EINTERNAL, "Stream: unreadable response");
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    Lipsync__V1__StreamResponse *m = lipsync__v1__stream_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                                         GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (!m) return ls_fail(err, LS_EFORMAT, "Stream: a response does not parse as StreamResponse");
    int rc = 0;
    cli_stream_result *r = L->r;
    if (m->msg_case == LIPSYNC__V1__STREAM_RESPONSE__MSG_FRAME) {
        rc = add_frame(L, m->frame, now, err);
    } else if (m->msg_case == LIPSYNC__V1__STREAM_RESPONSE__MSG_EVENT) {
        if (m->event->kind >= 1 && m->event->kind <= 3) r->events[m->event->kind]++;
    } else if (m->msg_case == LIPSYNC__V1__STREAM_RESPONSE__MSG_STATS) {
        const Lipsync__V1__StreamStats *s = m->stats;
        r->stats = (cli_stream_stats){
            .frames_out = s->frames_out, .frames_generated = s->frames_generated,
            .frames_idle = s->frames_idle, .frames_dropped = s->frames_dropped,
            .unet_jobs = s->unet_jobs, .unet_runs = s->unet_runs, .unet_items = s->unet_items,
            .samples_in = s->samples_in, .late_frames = s->late_frames,
            .encoder_requests = s->encoder_requests, .encoder_windows = s->encoder_windows,
            .encoder_runs = s->encoder_runs, .encoder_run_windows = s->encoder_run_windows,
            .encoder_shared_runs = s->encoder_shared_runs, .unet_overlapped_runs = s->unet_overlapped_runs,
            .queue_depth = s->queue_depth, .sessions = s->sessions, .latency_ms = s->latency_ms};
        r->have_stats = 1;
        r->n_stats++;
    }
    lipsync__v1__stream_response__free_unpacked(m, NULL);
    return rc;
}

static int check_cfg(const cli_stream_cfg *c, ls_err *err) {
    if (!c || !c->avatar || !*c->avatar || !c->pcm || c->n_samples == 0)
        return ls_fail(err, LS_EINVAL, "Stream: an avatar and some audio are required");
    if (c->chunk_ms < 1 || c->chunk_ms > CLI_STREAM_MAX_CHUNK_MS)
        return ls_fail(err, LS_EINVAL, "chunk length must be 1..%d ms", CLI_STREAM_MAX_CHUNK_MS);
    if (c->lookahead < 0 || c->lookahead > 7 || c->jpeg_quality < 0 || c->jpeg_quality > 100 ||
        c->idle_timeout_ms <= 0 || c->stats_ms < 0)
        return ls_fail(err, LS_EINVAL, "Stream: lookahead 0..7, JPEG quality 0..100, timeout > 0, stats >= 0");
    for (size_t i = 0; i < c->n_samples; i++)
        if (!isfinite(c->pcm[i])) return ls_fail(err, LS_EINVAL, "audio sample %zu is not finite", i);
    return 0;
}

/* The event loop: returns when the status has arrived and no operation is in flight. */
static int run_loop(loop *L, grpc_completion_queue *cq, const grpc_metadata *md, size_t n_md,
                    grpc_metadata_array *initial, ls_err *err) {
    int rc = 0;
    while (!(L->status_done && !L->send_busy && !L->recv_busy)) {
        double now = cli_now_ms();
        if (rc == 0 && !L->cancelled && sender(L, now, md, n_md, err) != 0) rc = -1;
        if (rc != 0 && !L->cancelled) { /* a local failure: end the call, keep draining */
            grpc_call_cancel_with_status(L->call, GRPC_STATUS_CANCELLED, "client error", NULL);
            L->cancelled = 1;
        }
        /* Wait for a completion until the next chunk is due, or until the idle timeout. */
        double wait_until = L->last_rx_ms + L->cfg->idle_timeout_ms;
        if (!L->send_busy && L->step == SEND_AUDIO && L->cfg->realtime_send && L->t0 > 0) {
            wait_until = L->t0 + (double)L->r->chunks_sent * L->cfg->chunk_ms;
        } else if (now >= wait_until && !L->cancelled) {
            grpc_call_cancel_with_status(L->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                         "no response from the server within --timeout-ms", NULL);
            L->cancelled = 1;
        }
        double wait_ms = wait_until - now;
        if (wait_ms < 0 || L->cancelled) wait_ms = L->cancelled ? 1000 : 0;
        gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_micros((int64_t)(wait_ms * 1000), GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(cq, dl, NULL);
        if (ev.type != GRPC_OP_COMPLETE) continue;
        now = cli_now_ms();
        switch ((int)(intptr_t)ev.tag) {
        case TAG_SEND:
            L->send_busy = 0;
            grpc_byte_buffer_destroy(L->send_buf);
            L->send_buf = NULL;
            if (!ev.success) L->step = SEND_DONE; /* the call is over; the status says why */
            break;
        case TAG_RECV:
            L->recv_busy = 0;
            if (!ev.success || !L->recv_buf) break; /* end of the response stream */
            L->last_rx_ms = now;
            if (rc == 0 && on_message(L, L->recv_buf, now, err) != 0) rc = -1;
            grpc_byte_buffer_destroy(L->recv_buf);
            L->recv_buf = NULL;
            if (post_recv(L, 0, err, initial) != 0) rc = -1;
            break;
        case TAG_STATUS:
            L->status_done = 1;
            break;
        default: break;
        }
    }
    return rc;
}

int cli_stream_run(cli_conn *c, const cli_stream_cfg *cfg, cli_stream_result *r, ls_err *err) {
    *r = (cli_stream_result){.status = CLI_STATUS_LOCAL, .first_frame_ms = -1, .first_generated_index = -1};
    if (!c) return ls_fail(err, LS_EINVAL, "Stream: no connection");
    if (check_cfg(cfg, err) != 0) return -1;
    loop L = {.cfg = cfg, .r = r, .chunk_samples = (size_t)cfg->chunk_ms * SAMPLES_PER_MS};
    if (!(L.f32 = malloc(4 * L.chunk_samples))) return ls_fail(err, LS_ENOMEM, "out of memory");
    double t_start = cli_now_ms();
    L.last_rx_ms = t_start;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    L.call = grpc_channel_create_call(cli_conn_channel(c), NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                      grpc_slice_from_static_string(STREAM_METHOD), NULL,
                                      gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata md[1];
    size_t n_md = 0;
    if (cli_conn_auth(c)) {
        md[0] = (grpc_metadata){.key = grpc_slice_from_static_string("authorization"),
                                .value = grpc_slice_from_static_string(cli_conn_auth(c))};
        n_md = 1;
    }
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *debug = NULL;
    grpc_op st;
    memset(&st, 0, sizeof st);
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &trailing;
    st.data.recv_status_on_client.status = &status;
    st.data.recv_status_on_client.status_details = &details;
    st.data.recv_status_on_client.error_string = &debug;
    int rc = start_batch(&L, &st, 1, TAG_STATUS, err);
    if (rc == 0 && post_recv(&L, 1, err, &initial) != 0) rc = -1;
    if (rc != 0) { /* nothing is in flight that could complete: mark the loop finished */
        grpc_call_cancel(L.call, NULL);
        L.status_done = 1, L.recv_busy = 0;
    }
    if (rc == 0) rc = run_loop(&L, cq, md, n_md, &initial, err);
    r->wall_ms = cli_now_ms() - t_start;
    size_t dn = GRPC_SLICE_LENGTH(details);
    if (dn >= sizeof r->message) dn = sizeof r->message - 1;
    memcpy(r->message, GRPC_SLICE_START_PTR(details), dn);
    r->message[dn] = '\0';
    if (L.status_done && rc == 0) {
        r->status = (int)status;
        if (status != GRPC_STATUS_OK)
            rc = ls_fail(err, cli_code_from_status((int)status), "%s: %s", cli_status_name((int)status),
                         r->message[0] ? r->message : "(no message)");
    }
    r->jitter_p50_ms = r->jitter_p99_ms = 0;
    if (r->n_intervals) {
        cli_latency s = cli_latency_summary(L.intervals, r->n_intervals);
        r->jitter_p50_ms = s.p50, r->jitter_p99_ms = s.p99;
    }
    if (debug) gpr_free((void *)debug);
    grpc_slice_unref(details);
    if (L.recv_buf) grpc_byte_buffer_destroy(L.recv_buf);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(L.call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    free(L.intervals);
    free(L.f32);
    return rc;
}

void cli_stream_result_free(cli_stream_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_frames; i++) free(r->frames[i].jpeg);
    free(r->frames);
    r->frames = NULL;
    r->n_frames = 0;
}
