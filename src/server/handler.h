/* handler.h - the contract between lipsyncd's transport and the code that answers one RPC.
 *
 * A handler is called on a worker thread (or, for SRV_METHOD_INLINE methods, on the I/O thread)
 * with the raw request bytes and per-worker scratch:
 *   - req->data/len: the serialized request, copied into req->arena; valid during the call only.
 *   - req->arena: the worker's arena, reset after every call. Unpack with srv_request_unpack(),
 *     which runs protobuf-c over req->arena, so a warm request needs no malloc.
 *   - srv_request_cancelled(): poll it in long work; nonzero once the client cancelled, the
 *     deadline passed, or the server is cancelling calls at the end of shutdown.
 * The handler answers through resp: srv_response_pack() (or _set_bytes) for the reply, and/or
 * srv_response_fail() for a non-OK status. It returns 0, or -1 for "failed" (a status that is
 * still OK then becomes INTERNAL). Handlers must not keep pointers into req after returning.
 * srv_response_note() adds the handler's part (avatar, frames, stage timings) to the request's
 * log line. */
#ifndef LS_SRV_HANDLER_H
#define LS_SRV_HANDLER_H

#include <grpc/slice.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/err.h"

struct srv_server;
struct srv_call;

typedef struct srv_request {
    const uint8_t *data;        /* the request message (protobuf wire format) */
    size_t len;
    ls_arena *arena;            /* per-request scratch; reset after the call */
    ProtobufCAllocator *pb_alloc; /* allocates from arena; free is a no-op */
    const char *method;         /* "/package.Service/Method" */
    const char *peer;           /* e.g. "ipv4:127.0.0.1:41234" */
    uint64_t id;                /* request id, as in the log line */
    int worker_index;           /* 0..worker_count-1; -1 on the I/O thread */
    void *worker_state;         /* the app's per-worker state (srv_app.worker_create) */
    struct srv_server *server;  /* for srv_server_stats() */
    struct srv_call *call_;     /* private */
} srv_request;

typedef struct srv_response {
    grpc_status_code status;    /* GRPC_STATUS_OK unless srv_response_fail() was called */
    char message[512];          /* status details for a non-OK status */
    grpc_slice reply;           /* the packed reply (owned; handed to gRPC without a copy) */
    int has_reply;
    size_t max_reply;           /* server.max_message_size_mb in bytes */
    char note[256];             /* the handler's part of the log line */
} srv_response;

typedef int (*srv_handler_fn)(void *app, srv_request *req, srv_response *resp);

enum {
    SRV_METHOD_INLINE = 1u << 0, /* cheap and non-blocking: run on the I/O thread, skip the queue */
    SRV_METHOD_NOAUTH = 1u << 1, /* exempt from the bearer token (health probes), if configured */
    SRV_METHOD_DRAINING = 1u << 2, /* still answered while shutting down (health reports it) */
};

/* A bidirectional streaming method (stream_call.h): runs on its own thread for the call's life,
 * drives the call and answers with srv_stream_finish. Returns 0, or -1 (INTERNAL unless the
 * handler finished the call itself). */
struct srv_stream;
typedef int (*srv_stream_fn)(void *app, struct srv_stream *st);

typedef struct srv_stream_method {
    const char *path;           /* "/package.Service/Method" */
    srv_stream_fn fn;
} srv_stream_method;

typedef struct srv_method {
    const char *path;           /* "/package.Service/Method" */
    srv_handler_fn fn;
    unsigned flags;
} srv_method;

/* Nonzero once the call should stop: 1 cancelled by the client or the server, 2 deadline passed. */
int srv_request_cancelled(const srv_request *req);

/* The flag behind srv_request_cancelled's 1 (set by the I/O thread when gRPC reports the call
 * cancelled, which it also does once the deadline passes), for loops that poll an atomic_int
 * (pipe_render_req.cancel). Valid during the handler. */
const atomic_int *srv_request_cancel_flag(const srv_request *req);

/* Nanoseconds the call waited between arriving and reaching its handler (accept to start). */
int64_t srv_request_queue_ns(const srv_request *req);

/* Value of request metadata `key` (lower case), or NULL; *len gets its length. Not NUL-terminated. */
const char *srv_request_metadata(const srv_request *req, const char *key, size_t *len);

/* protobuf_c_message_unpack over req->arena. NULL (and resp set to INVALID_ARGUMENT) when the
 * bytes are not a valid `desc` message or the arena is exhausted (RESOURCE_EXHAUSTED). */
ProtobufCMessage *srv_request_unpack(srv_request *req, const ProtobufCMessageDescriptor *desc,
                                     srv_response *resp);

/* Packs msg as the reply (one gRPC-owned buffer; no copy afterwards). -1 and RESOURCE_EXHAUSTED
 * when it exceeds max_reply. */
int srv_response_pack(srv_response *resp, const ProtobufCMessage *msg);

/* Raw reply bytes (copied). Used by test hooks that do not speak protobuf. */
int srv_response_set_bytes(srv_response *resp, const void *data, size_t len);

/* Sets a non-OK status with a printf-style message; returns -1. */
int srv_response_fail(srv_response *resp, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the status from an ls_err (codes map as err.h says); returns -1. */
int srv_response_fail_err(srv_response *resp, const ls_err *err);
grpc_status_code srv_status_from_err(ls_code code);

/* Appends to the log note ("avatar=x frames=8 infer_ms=12.5"). */
void srv_response_note(srv_response *resp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *srv_status_name(grpc_status_code code);

#endif
