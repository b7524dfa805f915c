/* stream_call.c - bidirectional streaming calls (stream_call.h): the per-call thread that runs a
 * `stream` handler, and the completions the I/O thread forwards to it. The I/O thread only sets
 * flags under the stream's mutex and signals; every batch is started by the handler's thread. */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "server/stream_call.h"

struct srv_stream {
    srv_call *c;
    srv_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t seq, seen;           /* bumped by every completion and wake */
    srv_tag t_recv, t_send, t_status;
    grpc_byte_buffer *rbuf;       /* written by gRPC */
    grpc_byte_buffer *sbuf;
    int reading, recv_ready, recv_eos;
    int writing, write_failed;
    int md_sent, status_posted, status_done, close_done, close_posted;
    uint8_t *msg;                 /* the taken message, grown to the largest */
    size_t msg_cap;
    grpc_status_code status;
    char status_msg[512];
    char note[256];
};

int64_t srv_stream_now_ns(void) { return srv_now_ns(); }

size_t srv_stream_max_message(const srv_stream *st) { return st->srv->max_msg; }

static void bump(srv_stream *st) {
    st->seq++;
    pthread_cond_broadcast(&st->cv);
}

void srv_stream_on_event(srv_tag *t, int ok) {
    srv_stream *st = t->call->stream;
    pthread_mutex_lock(&st->mu);
    switch (t->kind) {
    case TAG_SRECV:
        st->reading = 0;
        if (ok && st->rbuf) st->recv_ready = 1;
        else st->recv_eos = 1;
        break;
    case TAG_SSEND:
        st->writing = 0;
        if (!ok) st->write_failed = 1;
        break;
    case TAG_SSTATUS: st->status_done = 1; break;
    case TAG_CLOSE:
        st->close_done = 1;
        if (st->c->close_cancelled || !ok) atomic_store(&st->c->cancelled, 1);
        break;
    default: break;
    }
    bump(st);
    pthread_mutex_unlock(&st->mu);
}

/* Initial metadata goes with the call's first batch. */
static size_t add_md(srv_stream *st, grpc_op *ops) {
    if (st->md_sent) return 0;
    st->md_sent = 1;
    memset(ops, 0, sizeof *ops);
    ops->op = GRPC_OP_SEND_INITIAL_METADATA;
    return 1;
}

int srv_stream_read(srv_stream *st) {
    pthread_mutex_lock(&st->mu);
    int busy = st->reading || st->recv_ready || st->recv_eos || st->status_posted;
    if (!busy) st->reading = 1;
    pthread_mutex_unlock(&st->mu);
    if (busy) return -1;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &st->rbuf;
    if (grpc_call_start_batch(st->c->call, &op, 1, &st->t_recv, NULL) != GRPC_CALL_OK) {
        pthread_mutex_lock(&st->mu);
        st->reading = 0;
        st->recv_eos = 1;
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    return 0;
}

int srv_stream_reading(const srv_stream *st) {
    srv_stream *m = (srv_stream *)st;
    pthread_mutex_lock(&m->mu);
    int r = m->reading;
    pthread_mutex_unlock(&m->mu);
    return r;
}

int srv_stream_take(srv_stream *st, const uint8_t **data, size_t *len) {
    pthread_mutex_lock(&st->mu);
    int ready = st->recv_ready, eos = st->recv_eos;
    st->recv_ready = 0;
    pthread_mutex_unlock(&st->mu);
    if (!ready) return eos ? -1 : 0;
    grpc_byte_buffer *b = st->rbuf;
    st->rbuf = NULL;
    grpc_byte_buffer_reader r;
    int rc = -1;
    if (grpc_byte_buffer_reader_init(&r, b)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&r); /* one slice: decompressed if needed */
        size_t n = GRPC_SLICE_LENGTH(all);
        if (n + 1 > st->msg_cap) {
            uint8_t *grown = realloc(st->msg, n + 1);
            if (grown) st->msg = grown, st->msg_cap = n + 1;
        }
        if (n + 1 <= st->msg_cap) {
            memcpy(st->msg, GRPC_SLICE_START_PTR(all), n);
            *data = st->msg;
            *len = n;
            st->c->bytes_in += n;
            rc = 1;
        }
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&r);
    }
    grpc_byte_buffer_destroy(b);
    if (rc < 0) {
        pthread_mutex_lock(&st->mu);
        st->recv_eos = 1;
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

int srv_stream_writing(const srv_stream *st) {
    srv_stream *m = (srv_stream *)st;
    pthread_mutex_lock(&m->mu);
    int w = m->writing;
    pthread_mutex_unlock(&m->mu);
    return w;
}

int srv_stream_write(srv_stream *st, grpc_slice msg) {
    pthread_mutex_lock(&st->mu);
    int writing = st->writing, over = st->write_failed || st->status_posted || st->close_done;
    if (!writing && !over) {
        st->writing = 1;
        if (st->sbuf) grpc_byte_buffer_destroy(st->sbuf);
        st->sbuf = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    if (writing) return 1;
    if (over) {
        grpc_slice_unref(msg);
        return -1;
    }
    st->c->bytes_out += GRPC_SLICE_LENGTH(msg);
    st->sbuf = grpc_raw_byte_buffer_create(&msg, 1);
    grpc_slice_unref(msg);
    grpc_op ops[2];
    size_t n = add_md(st, ops);
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = st->sbuf;
    if (grpc_call_start_batch(st->c->call, ops, n + 1, &st->t_send, NULL) != GRPC_CALL_OK) {
        pthread_mutex_lock(&st->mu);
        st->writing = 0;
        st->write_failed = 1;
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    return 0;
}

void srv_stream_wait(srv_stream *st, int64_t deadline_ns) {
    pthread_mutex_lock(&st->mu);
    while (st->seq == st->seen) {
        int64_t left = deadline_ns - srv_now_ns();
        if (left <= 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000000000;
        ts.tv_nsec += left % 1000000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    }
    st->seen = st->seq;
    pthread_mutex_unlock(&st->mu);
}

void srv_stream_wake(srv_stream *st) {
    pthread_mutex_lock(&st->mu);
    bump(st);
    pthread_mutex_unlock(&st->mu);
}

int srv_stream_cancelled(const srv_stream *st) {
    const srv_call *c = st->c;
    gpr_timespec now = gpr_now(c->details.deadline.clock_type);
    if (gpr_time_cmp(now, c->details.deadline) >= 0) return 2;
    if (atomic_load(&c->cancelled)) return 1;
    return atomic_load(&st->srv->draining) >= 2 ? 3 : 0;
}

void srv_stream_note(srv_stream *st, const char *fmt, ...) {
    size_t used = strlen(st->note);
    if (used + 1 >= sizeof st->note) return;
    if (used) st->note[used++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->note + used, sizeof st->note - used, fmt, ap);
    va_end(ap);
}

/* Waits (under mu) until `cond` holds; completions of a cancelled call come promptly. */
#define WAIT_UNTIL(st, cond)                                                 \
    do {                                                                     \
        pthread_mutex_lock(&(st)->mu);                                       \
        while (!(cond)) pthread_cond_wait(&(st)->cv, &(st)->mu);             \
        pthread_mutex_unlock(&(st)->mu);                                     \
    } while (0)

void srv_stream_finish(srv_stream *st, grpc_status_code code, const char *msg) {
    if (st->status_posted) return;
    WAIT_UNTIL(st, !st->writing);
    pthread_mutex_lock(&st->mu);
    st->status_posted = 1;
    pthread_mutex_unlock(&st->mu);
    st->status = code;
    snprintf(st->status_msg, sizeof st->status_msg, "%s", msg ? msg : "");
    grpc_slice details = code == GRPC_STATUS_OK ? grpc_empty_slice() : grpc_slice_from_copied_string(st->status_msg);
    grpc_op ops[2];
    size_t n = add_md(st, ops);
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details = &details;
    if (grpc_call_start_batch(st->c->call, ops, n + 1, &st->t_status, NULL) != GRPC_CALL_OK) {
        pthread_mutex_lock(&st->mu);
        st->status_done = 1;
        pthread_mutex_unlock(&st->mu);
    }
    grpc_slice_unref(details);
}

static void *stream_main(void *arg) {
    srv_stream *st = arg;
    srv_call *c = st->c;
    srv_server *srv = st->srv;
    c->t_start_ns = srv_now_ns();
    int rc = c->smethod->fn(srv->app->ctx, st);
    if (!st->status_posted)
        srv_stream_finish(st, rc ? GRPC_STATUS_INTERNAL : GRPC_STATUS_OK, rc ? "stream handler failed" : "");
    /* The call is complete once the status went out and RECV_CLOSE_ON_SERVER came back; an
     * outstanding receive then completes too. After this no completion refers to st. */
    WAIT_UNTIL(st, st->status_done && st->close_done && !st->reading && !st->writing);
    atomic_fetch_add(&srv->total, 1);
    if (st->status != GRPC_STATUS_OK) atomic_fetch_add(&srv->failed, 1);
    srv_log_level lvl = st->status == GRPC_STATUS_OK || st->status == GRPC_STATUS_CANCELLED ? SRV_LOG_INFO
                        : st->status == GRPC_STATUS_INTERNAL ? SRV_LOG_ERROR : SRV_LOG_WARN;
    srv_logf(srv->log, lvl, "req=%llu %s peer=%s status=%s ms=%.2f in=%zu out=%zu%s%s%s%s",
             (unsigned long long)c->id, c->method_name, c->peer, srv_status_name(st->status),
             (double)(srv_now_ns() - c->t_accept_ns) / 1e6, c->bytes_in, c->bytes_out,
             st->note[0] ? " " : "", st->note, st->status_msg[0] ? " error=" : "", st->status_msg);
    int close_posted = st->close_posted;
    if (st->rbuf) grpc_byte_buffer_destroy(st->rbuf);
    if (st->sbuf) grpc_byte_buffer_destroy(st->sbuf);
    free(st->msg);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
    c->stream = NULL;
    srv_call_unref(c);              /* the flow */
    if (close_posted) srv_call_unref(c); /* the close op (not unreffed by the I/O thread) */
    pthread_mutex_lock(&srv->mu);
    srv->inflight--;
    srv->streams--;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

int srv_stream_begin(srv_call *c, int close_posted) {
    srv_server *srv = c->srv;
    srv_stream *st = calloc(1, sizeof *st);
    if (!st) return -1;
    st->c = c;
    st->srv = srv;
    st->t_recv = (srv_tag){TAG_SRECV, c};
    st->t_send = (srv_tag){TAG_SSEND, c};
    st->t_status = (srv_tag){TAG_SSTATUS, c};
    st->close_posted = close_posted;
    st->close_done = !close_posted;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    c->stream = st;
    pthread_mutex_lock(&srv->mu);
    srv->inflight++;
    srv->streams++;
    pthread_mutex_unlock(&srv->mu);
    c->admitted = 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int e = pthread_create(&th, &attr, stream_main, st);
    pthread_attr_destroy(&attr);
    if (e) {
        c->stream = NULL;
        pthread_mutex_lock(&srv->mu);
        srv->inflight--;
        srv->streams--;
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->mu);
        c->admitted = 0;
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        free(st);
        return -1;
    }
    return 0;
}
