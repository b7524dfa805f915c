/* request.c - the handler-facing side of a call (handler.h): the request copied into the worker's
 * arena, protobuf-c unpacking over that arena, reply packing, statuses, and running a handler. */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/server_internal.h"

int64_t srv_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* protobuf-c's allocator interface over the worker's arena: unpacking a request costs no malloc;
 * everything is dropped at once by arena_reset after the call. */
static void *arena_pb_alloc(void *data, size_t size) { return arena_alloc(data, size ? size : 1, 16); }
static void arena_pb_free(void *data, void *ptr) { (void)data, (void)ptr; }

void srv_worker_alloc_init(srv_worker *w) {
    w->alloc.alloc = arena_pb_alloc;
    w->alloc.free = arena_pb_free;
    w->alloc.allocator_data = &w->arena;
}

int srv_request_cancelled(const srv_request *req) {
    const srv_call *c = req->call_;
    /* The deadline first: gRPC also cancels the call when it passes, and the client should hear
     * DEADLINE_EXCEEDED then, not CANCELLED. */
    gpr_timespec now = gpr_now(c->details.deadline.clock_type);
    if (gpr_time_cmp(now, c->details.deadline) >= 0) return 2;
    return atomic_load(&c->cancelled) ? 1 : 0;
}

const atomic_int *srv_request_cancel_flag(const srv_request *req) { return &req->call_->cancelled; }

int64_t srv_request_queue_ns(const srv_request *req) {
    const srv_call *c = req->call_;
    return c->t_start_ns > c->t_accept_ns ? c->t_start_ns - c->t_accept_ns : 0;
}

const char *srv_request_metadata(const srv_request *req, const char *key, size_t *len) {
    const srv_call *c = req->call_;
    size_t klen = strlen(key);
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) == klen && !memcmp(GRPC_SLICE_START_PTR(m->key), key, klen)) {
            if (len) *len = GRPC_SLICE_LENGTH(m->value);
            return (const char *)GRPC_SLICE_START_PTR(m->value);
        }
    }
    return NULL;
}

ProtobufCMessage *srv_request_unpack(srv_request *req, const ProtobufCMessageDescriptor *desc,
                                     srv_response *resp) {
    size_t before = req->arena->used;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, req->pb_alloc, req->len, req->data);
    if (!m) {
        /* protobuf-c reports both failures as NULL; an arena at its end tells them apart. */
        if (req->arena->cap - req->arena->used < 4096 || req->arena->cap - before < req->len)
            srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "request too large to decode");
        else
            srv_response_fail(resp, GRPC_STATUS_INVALID_ARGUMENT, "malformed %s message", desc->name);
    }
    return m;
}

int srv_response_pack(srv_response *resp, const ProtobufCMessage *msg) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > resp->max_reply)
        return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "reply of %zu bytes exceeds the %zu-byte message limit", n, resp->max_reply);
    if (resp->has_reply) grpc_slice_unref(resp->reply);
    /* Packed straight into a gRPC-owned slice: gRPC sends and frees it, no copy on our side. */
    resp->reply = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(resp->reply));
    resp->has_reply = 1;
    return 0;
}

int srv_response_set_bytes(srv_response *resp, const void *data, size_t len) {
    if (len > resp->max_reply)
        return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "reply of %zu bytes exceeds the %zu-byte message limit", len, resp->max_reply);
    if (resp->has_reply) grpc_slice_unref(resp->reply);
    resp->reply = grpc_slice_from_copied_buffer(data, len);
    resp->has_reply = 1;
    return 0;
}

int srv_response_fail(srv_response *resp, grpc_status_code code, const char *fmt, ...) {
    resp->status = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp->message, sizeof resp->message, fmt, ap);
    va_end(ap);
    return -1;
}

grpc_status_code srv_status_from_err(ls_code code) {
    switch (code) {
    case LS_OK: return GRPC_STATUS_OK;
    case LS_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
    case LS_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
    case LS_EIO: return GRPC_STATUS_INTERNAL;
    case LS_EFORMAT: return GRPC_STATUS_FAILED_PRECONDITION;
    case LS_EMODEL: return GRPC_STATUS_FAILED_PRECONDITION;
    case LS_ENOMEM: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case LS_EBUSY: return GRPC_STATUS_UNAVAILABLE;
    case LS_ECANCELLED: return GRPC_STATUS_CANCELLED;
    case LS_EINTERNAL: return GRPC_STATUS_INTERNAL;
    }
    return GRPC_STATUS_INTERNAL;
}

int srv_response_fail_err(srv_response *resp, const ls_err *err) {
    grpc_status_code code = srv_status_from_err(err->code);
    return srv_response_fail(resp, code == GRPC_STATUS_OK ? GRPC_STATUS_INTERNAL : code, "%s", err->msg);
}

void srv_response_note(srv_response *resp, const char *fmt, ...) {
    size_t used = strlen(resp->note);
    if (used + 1 >= sizeof resp->note) return;
    if (used) resp->note[used++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp->note + used, sizeof resp->note - used, fmt, ap);
    va_end(ap);
}

const char *srv_status_name(grpc_status_code code) {
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    return (unsigned)code < sizeof names / sizeof *names ? names[code] : "UNKNOWN";
}

/* Copies the request into the arena (slice by slice; no malloc for uncompressed messages). */
static const uint8_t *copy_request(srv_worker *w, grpc_byte_buffer *buf, size_t *len) {
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, buf)) return NULL;
    uint8_t *dst = NULL;
    if (buf->type == GRPC_BB_RAW && buf->data.raw.compression == GRPC_COMPRESS_NONE) {
        size_t n = grpc_byte_buffer_length(buf);
        dst = arena_alloc(&w->arena, n ? n : 1, 64);
        grpc_slice s;
        size_t off = 0;
        while (dst && grpc_byte_buffer_reader_next(&r, &s)) {
            memcpy(dst + off, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
            off += GRPC_SLICE_LENGTH(s);
            grpc_slice_unref(s);
        }
        *len = off;
    } else {
        /* A compressed request: gRPC decompresses into one slice of its own. */
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        *len = GRPC_SLICE_LENGTH(all);
        dst = arena_alloc(&w->arena, *len ? *len : 1, 64);
        if (dst) memcpy(dst, GRPC_SLICE_START_PTR(all), *len);
        grpc_slice_unref(all);
    }
    grpc_byte_buffer_reader_destroy(&r);
    return dst;
}

int srv_run_handler(srv_worker *w, srv_call *c, srv_response *resp) {
    srv_server *srv = w->srv;
    memset(resp, 0, sizeof *resp);
    resp->status = GRPC_STATUS_OK;
    resp->max_reply = srv->max_msg;
    c->t_start_ns = srv_now_ns();
    arena_reset(&w->arena);
    srv_request req = {0};
    req.data = copy_request(w, c->recv_buf, &req.len);
    grpc_byte_buffer_destroy(c->recv_buf);
    c->recv_buf = NULL;
    if (!req.data)
        return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "request does not fit the worker arena");
    req.arena = &w->arena;
    req.pb_alloc = &w->alloc;
    req.method = c->method_name;
    req.peer = c->peer;
    req.id = c->id;
    req.worker_index = w->index;
    req.worker_state = w->app_state;
    req.server = srv;
    req.call_ = c;
    int why = srv_request_cancelled(&req);
    if (why) /* queued past its deadline or cancelled while waiting: do no work */
        return srv_response_fail(resp, why == 2 ? GRPC_STATUS_DEADLINE_EXCEEDED : GRPC_STATUS_CANCELLED,
                                 "%s before a worker was free", why == 2 ? "deadline passed" : "cancelled");
    int rc = c->method->fn(srv->app->ctx, &req, resp);
    if (rc && resp->status == GRPC_STATUS_OK)
        srv_response_fail(resp, GRPC_STATUS_INTERNAL, "%s failed", c->method_name);
    return rc;
}
