/* server_internal.h - structures shared by the transport's files (grpc_server.c: lifetime and
 * the I/O thread; call.c: one call's path through accept, read, queue, handler and reply;
 * request.c: the handler-facing helpers). Not for handlers: they see handler.h only. */
#ifndef LS_SRV_SERVER_INTERNAL_H
#define LS_SRV_SERVER_INTERNAL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>

#include "server/handler.h"
#include "server/queue.h"
#include "server/server.h"

/* Streaming calls admitted beyond stream.max_sessions: streams still waiting for their config
 * (the session limit itself is checked once the config names a model). */
#define SRV_STREAM_SPARE 4

enum { TAG_ACCEPT, TAG_RECV, TAG_CLOSE, TAG_SEND, TAG_SHUTDOWN, TAG_SRECV, TAG_SSEND, TAG_SSTATUS };

typedef struct srv_tag {
    int kind;
    struct srv_call *call;
} srv_tag;

/* One call slot. The pool holds workers + queue depth + spare slots; every free slot has a
 * grpc_server_request_call outstanding, so a burst beyond the queue is answered at once. */
typedef struct srv_call {
    struct srv_server *srv;
    srv_tag t_accept, t_recv, t_close, t_send;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    int close_cancelled;      /* written by gRPC when RECV_CLOSE_ON_SERVER completes */
    atomic_int cancelled;     /* read by handlers through srv_request_cancelled */
    atomic_int refs;          /* pending: close op + the flow (I/O thread -> worker -> send) */
    int admitted;             /* counted in srv->inflight */
    const srv_method *method;
    const srv_stream_method *smethod; /* a streaming method (then method is NULL) */
    struct srv_stream *stream; /* streaming calls: the call's thread (stream_call.c) */
    char method_name[128];
    char peer[96];
    uint64_t id;
    int64_t t_accept_ns, t_start_ns;
    size_t bytes_in, bytes_out;
    grpc_status_code status;
    char status_msg[512];
    char note[256];
} srv_call;

/* A worker's private scratch (the I/O thread has one too, for inline handlers). */
typedef struct srv_worker {
    struct srv_server *srv;
    int index;
    ls_arena arena;
    ProtobufCAllocator alloc;
    void *app_state;
    pthread_t thread;
    int started;
} srv_worker;

struct srv_server {
    const srv_config *cfg;
    srv_app *app;
    srv_log *log;
    grpc_server *server;
    grpc_completion_queue *cq;
    char address[280];
    srv_method *methods;
    int n_methods;
    srv_call *calls;
    int n_calls;
    srv_queue queue;
    srv_worker *workers;      /* cfg->worker_count */
    srv_worker io_worker;     /* scratch for inline handlers */
    pthread_t io_thread;
    int io_started, grpc_started;
    size_t max_msg;
    srv_tag t_shutdown;
    atomic_int draining;
    atomic_int busy;
    atomic_llong next_id, total, failed, rejected;
    int64_t t_created_ns;
    pthread_mutex_t mu;       /* guards inflight, shutdown_done (and wakes srv_server_shutdown) */
    pthread_cond_t cond;
    int inflight;             /* admitted calls not yet answered */
    int streams;              /* streaming calls whose thread has not finished */
    int shutdown_done;
    int io_done;
};

int64_t srv_now_ns(void);

/* call.c */
void srv_call_init(srv_call *c, struct srv_server *srv);
int srv_call_request(srv_call *c);                     /* (re)arm the slot */
void srv_call_on_event(srv_tag *t, int success);       /* I/O thread */
void *srv_worker_main(void *arg);
void srv_call_unref(srv_call *c);

/* stream_call.c */
int srv_stream_begin(srv_call *c, int close_posted);  /* I/O thread; -1: no thread */
void srv_stream_on_event(srv_tag *t, int success);    /* I/O thread */

/* request.c */
void srv_worker_alloc_init(srv_worker *w);
int srv_run_handler(srv_worker *w, srv_call *c, srv_response *resp);

#endif
