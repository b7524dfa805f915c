/* server.h - lipsyncd's gRPC transport (gRPC core C API + protobuf-c).
 *
 * One I/O thread drives a completion queue: it accepts calls, checks auth and the method table,
 * reads the request and pushes the call into a bounded queue (full -> RESOURCE_EXHAUSTED at
 * once); worker_count workers pop calls, run the handler and start the reply. Calls from one
 * connection therefore spread over all workers. Everything (call slots, arenas, queue, log ring)
 * is allocated by srv_server_create; a warm request mallocs nothing in lipsyncd's code.
 *
 * Shutdown (srv_server_shutdown): health turns NOT_SERVING and new calls get UNAVAILABLE; calls
 * already admitted get the grace period to finish; then the gRPC server shuts down, remaining
 * calls are cancelled (handlers see srv_request_cancelled), and all threads are joined.
 * grpc_init/grpc_shutdown are the caller's (main.c), after blocking SIGINT/SIGTERM. */
#ifndef LS_SRV_SERVER_H
#define LS_SRV_SERVER_H

#include <stdint.h>

#include "common/err.h"
#include "server/config.h"
#include "server/log.h"
#include "server/srv_app.h"

typedef struct srv_server srv_server;

typedef struct srv_stats {
    int64_t uptime_ms;
    int64_t requests_total;     /* calls answered, any status */
    int64_t requests_failed;    /* non-OK status */
    int64_t requests_rejected;  /* RESOURCE_EXHAUSTED because the queue was full */
    int workers, workers_busy;
    int queue_depth, queue_length;
    int serving;                /* 0 while shutting down or before the app is ready */
} srv_stats;

/* Builds the server: method table (built-ins, then app->methods override by path), per-worker
 * arenas and app state, binds cfg->listen (TLS when configured). Does not start threads. */
srv_server *srv_server_create(const srv_config *cfg, srv_app *app, srv_log *log, ls_err *err);

/* Starts gRPC, the I/O thread and the workers. */
int srv_server_start(srv_server *srv, ls_err *err);

/* Drains and stops as described above. `force` (may be NULL) is polled during the grace period:
 * when it becomes nonzero (a second signal), remaining calls are cancelled at once. */
void srv_server_shutdown(srv_server *srv, volatile int *force);

/* Frees everything (after shutdown, or instead of start). */
void srv_server_destroy(srv_server *srv);

void srv_server_stats(srv_server *srv, srv_stats *out);
int srv_server_draining(const srv_server *srv);

/* The address actually bound ("127.0.0.1:41234" when the config asked for port 0). */
const char *srv_server_address(const srv_server *srv);

/* Built-in method table (builtin.c): health, the not-wired API methods, and the test hooks the
 * config or the build enables, copied into out (at most cap); returns how many. */
#define SRV_BUILTIN_MAX 32
int srv_builtin_methods(const srv_config *cfg, srv_method *out, int cap);

/* Nonzero in lipsyncd_alloccount, the test build whose allocations are counted (AllocCount). */
int srv_testing_alloc_counter_linked(void);

#endif
