/* call.c - one call's path through the server: accepted on the I/O thread (auth, method lookup),
 * request read, admitted into the bounded queue (or answered RESOURCE_EXHAUSTED at once), run by
 * a worker, answered, logged, and its slot re-armed. A slot is freed when both the flow (reply
 * sent) and the RECV_CLOSE_ON_SERVER op are done, whichever finishes last. */
#include <grpc/byte_buffer.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <string.h>

#include "server/server_internal.h"

static void release(srv_call *c);

static void unref(srv_call *c) {
    if (atomic_fetch_sub(&c->refs, 1) == 1) release(c);
}

void srv_call_unref(srv_call *c) { unref(c); }

void srv_call_init(srv_call *c, srv_server *srv) {
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->t_accept = (srv_tag){TAG_ACCEPT, c};
    c->t_recv = (srv_tag){TAG_RECV, c};
    c->t_close = (srv_tag){TAG_CLOSE, c};
    c->t_send = (srv_tag){TAG_SEND, c};
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
}

int srv_call_request(srv_call *c) {
    if (atomic_load(&c->srv->draining) >= 2) return -1; /* the gRPC server is shutting down */
    grpc_call_error e = grpc_server_request_call(c->srv->server, &c->call, &c->details, &c->md,
                                                 c->srv->cq, c->srv->cq, &c->t_accept);
    return e == GRPC_CALL_OK ? 0 : -1;
}

static void release(srv_call *c) {
    srv_server *srv = c->srv;
    if (c->recv_buf) grpc_byte_buffer_destroy(c->recv_buf);
    if (c->call) grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    srv_call_init(c, srv);
    srv_call_request(c);
}

/* Starts the reply: initial metadata, the message when OK, and the status. Consumes resp->reply.
 * After this the caller must not touch `c`: the I/O thread may complete and re-arm it. */
static void start_send(srv_call *c, srv_response *resp) {
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    if (resp->status == GRPC_STATUS_OK && resp->has_reply) {
        c->bytes_out = GRPC_SLICE_LENGTH(resp->reply);
        c->send_buf = grpc_raw_byte_buffer_create(&resp->reply, 1);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->send_buf;
        n++;
    }
    if (resp->has_reply) grpc_slice_unref(resp->reply);
    resp->has_reply = 0;
    c->status = resp->status;
    /* Counted before the reply leaves, so a client never sees its reply before the count. */
    atomic_fetch_add(&c->srv->total, 1);
    if (c->status != GRPC_STATUS_OK) atomic_fetch_add(&c->srv->failed, 1);
    snprintf(c->status_msg, sizeof c->status_msg, "%s", resp->message);
    snprintf(c->note, sizeof c->note, "%s", resp->note);
    /* Copied: gRPC may hold the details past the batch; empty for OK (no allocation). */
    grpc_slice details = c->status == GRPC_STATUS_OK ? grpc_empty_slice()
                                                     : grpc_slice_from_copied_string(c->status_msg);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->status;
    ops[n].data.send_status_from_server.status_details = &details;
    n++;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->t_send, NULL);
    grpc_slice_unref(details);
    if (e != GRPC_CALL_OK) srv_call_on_event(&c->t_send, 0);
}

static void finish_status(srv_call *c, grpc_status_code code, const char *msg) {
    srv_response r;
    memset(&r, 0, sizeof r);
    r.status = code;
    snprintf(r.message, sizeof r.message, "%s", msg);
    start_send(c, &r);
}

/* Bearer-token check; constant time in the token so a timing probe learns nothing. */
static int authorized(srv_call *c) {
    const srv_config *cfg = c->srv->cfg;
    size_t tlen = strlen(cfg->auth_token);
    if (!tlen) return 1;
    if (c->method && (c->method->flags & SRV_METHOD_NOAUTH) && cfg->auth_exempt_health) return 1;
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != 13 || memcmp(GRPC_SLICE_START_PTR(m->key), "authorization", 13))
            continue;
        const unsigned char *v = GRPC_SLICE_START_PTR(m->value);
        size_t vlen = GRPC_SLICE_LENGTH(m->value);
        if (vlen != tlen + 7 || memcmp(v, "Bearer ", 7)) continue;
        unsigned char diff = 0;
        for (size_t k = 0; k < tlen; k++) diff |= (unsigned char)(v[7 + k] ^ (unsigned char)cfg->auth_token[k]);
        if (!diff) return 1;
    }
    return 0;
}

static void on_accept(srv_call *c, int ok) {
    srv_server *srv = c->srv;
    if (!ok) return; /* shutdown: the slot stays idle */
    c->id = (uint64_t)atomic_fetch_add(&srv->next_id, 1) + 1;
    c->t_accept_ns = srv_now_ns();
    size_t mlen = GRPC_SLICE_LENGTH(c->details.method);
    if (mlen >= sizeof c->method_name) mlen = sizeof c->method_name - 1;
    memcpy(c->method_name, GRPC_SLICE_START_PTR(c->details.method), mlen);
    c->method_name[mlen] = 0;
    char *peer = grpc_call_get_peer(c->call);
    snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");
    gpr_free(peer);
    for (int i = 0; i < srv->n_methods; i++)
        if (!strcmp(srv->methods[i].path, c->method_name)) c->method = &srv->methods[i];
    for (int i = 0; i < srv->app->n_stream_methods && !c->method; i++)
        if (!strcmp(srv->app->stream_methods[i].path, c->method_name)) c->smethod = &srv->app->stream_methods[i];

    atomic_store(&c->refs, 2); /* the flow and the close op */
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    int close_posted = grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL) == GRPC_CALL_OK;
    if (!close_posted) atomic_store(&c->refs, 1);

    char msg[200];
    if (!authorized(c)) {
        finish_status(c, GRPC_STATUS_UNAUTHENTICATED, "missing or wrong 'authorization: Bearer' token");
    } else if (!c->method && !c->smethod) {
        snprintf(msg, sizeof msg, "unknown method %s", c->method_name);
        finish_status(c, GRPC_STATUS_UNIMPLEMENTED, msg);
    } else if (atomic_load(&srv->draining) && !(c->method && (c->method->flags & SRV_METHOD_DRAINING))) {
        finish_status(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
    } else if (c->smethod) {
        /* Streams hold their call slot for their whole life: past the session limit (plus a few
         * waiting for their config) they are refused, so they never take the unary calls' slots. */
        pthread_mutex_lock(&srv->mu);
        int full = srv->streams >= srv->cfg->stream_max_sessions + SRV_STREAM_SPARE;
        pthread_mutex_unlock(&srv->mu);
        if (full)
            finish_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many open streams");
        else if (srv_stream_begin(c, close_posted))
            finish_status(c, GRPC_STATUS_UNAVAILABLE, "cannot start the stream's thread");
    } else {
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->recv_buf;
        if (grpc_call_start_batch(c->call, &op, 1, &c->t_recv, NULL) != GRPC_CALL_OK)
            finish_status(c, GRPC_STATUS_INTERNAL, "cannot read the request");
    }
}

static void on_recv(srv_call *c, int ok) {
    srv_server *srv = c->srv;
    if (!ok || !c->recv_buf) {
        finish_status(c, ok ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_CANCELLED,
                      ok ? "no request message" : "call ended before its request arrived");
        return;
    }
    c->bytes_in = grpc_byte_buffer_length(c->recv_buf);
    if (atomic_load(&srv->draining) && !(c->method->flags & SRV_METHOD_DRAINING)) {
        finish_status(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        return;
    }
    pthread_mutex_lock(&srv->mu);
    srv->inflight++;
    pthread_mutex_unlock(&srv->mu);
    c->admitted = 1;
    if (c->method->flags & SRV_METHOD_INLINE) {
        srv_response resp;
        srv_run_handler(&srv->io_worker, c, &resp);
        start_send(c, &resp);
        return;
    }
    if (srv_queue_try_push(&srv->queue, c)) {
        atomic_fetch_add(&srv->rejected, 1);
        char msg[200];
        snprintf(msg, sizeof msg, "server overloaded: %d workers busy and %d calls queued; retry later",
                 srv->cfg->worker_count, srv->cfg->queue_depth);
        finish_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
    }
}

static void on_sent(srv_call *c) {
    srv_server *srv = c->srv;
    if (c->send_buf) grpc_byte_buffer_destroy(c->send_buf);
    c->send_buf = NULL;
    int64_t end = srv_now_ns();
    srv_log_level lvl = c->status == GRPC_STATUS_OK ? SRV_LOG_INFO
                        : c->status == GRPC_STATUS_INTERNAL ? SRV_LOG_ERROR : SRV_LOG_WARN;
    double queue_ms = c->t_start_ns ? (double)(c->t_start_ns - c->t_accept_ns) / 1e6 : 0.0;
    srv_logf(srv->log, lvl, "req=%llu %s peer=%s status=%s ms=%.2f queue_ms=%.2f in=%zu out=%zu%s%s%s%s",
             (unsigned long long)c->id, c->method_name, c->peer, srv_status_name(c->status),
             (double)(end - c->t_accept_ns) / 1e6, queue_ms, c->bytes_in, c->bytes_out,
             c->note[0] ? " " : "", c->note, c->status_msg[0] ? " error=" : "", c->status_msg);
    if (c->admitted) {
        pthread_mutex_lock(&srv->mu);
        if (--srv->inflight == 0) pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->mu);
    }
    unref(c);
}

void srv_call_on_event(srv_tag *t, int success) {
    srv_call *c = t->call;
    if (c->stream && (t->kind == TAG_CLOSE || t->kind >= TAG_SRECV)) {
        srv_stream_on_event(t, success);
        return;
    }
    switch (t->kind) {
    case TAG_ACCEPT: on_accept(c, success); break;
    case TAG_RECV: on_recv(c, success); break;
    case TAG_SEND: on_sent(c); break;
    case TAG_CLOSE:
        if (c->close_cancelled || !success) atomic_store(&c->cancelled, 1);
        unref(c);
        break;
    default: break;
    }
}

void *srv_worker_main(void *arg) {
    srv_worker *w = arg;
    srv_server *srv = w->srv;
    srv_call *c;
    while ((c = srv_queue_pop(&srv->queue))) {
        atomic_fetch_add(&srv->busy, 1);
        srv_response resp;
        srv_run_handler(w, c, &resp);
        atomic_fetch_sub(&srv->busy, 1);
        srv_queue_done(&srv->queue);
        start_send(c, &resp);
    }
    return NULL;
}
