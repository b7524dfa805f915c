/* grpc_server.c - lifetime of the transport (server.h): building the gRPC server from the config,
 * the I/O thread that drains the completion queue, the workers, and the graceful shutdown. */
#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/ort_affinity.h"
#include "server/server_internal.h"

#define SPARE_SLOTS 8         /* slots beyond workers + queue, so overload is answered at once */
#define IO_ARENA_BYTES (1u << 20)

static void *io_main(void *arg) {
    srv_server *srv = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        srv_tag *t = ev.tag;
        if (t->kind == TAG_SHUTDOWN) {
            pthread_mutex_lock(&srv->mu);
            srv->shutdown_done = 1;
            pthread_cond_broadcast(&srv->cond);
            pthread_mutex_unlock(&srv->mu);
            continue;
        }
        srv_call_on_event(t, ev.success);
    }
    return NULL;
}

/* Reads a whole PEM file into a NUL-terminated heap string. */
static char *read_pem(const char *path, ls_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { ls_fail(err, LS_EIO, "TLS file %s: %s", path, strerror(errno)); return NULL; }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf || !n) { free(buf); ls_fail(err, LS_EIO, "TLS file %s: empty or unreadable", path); return NULL; }
    buf[n] = 0;
    return buf;
}

static grpc_server_credentials *make_creds(const srv_config *cfg, ls_err *err) {
    if (!cfg->tls_cert[0]) return grpc_insecure_server_credentials_create();
    char *cert = read_pem(cfg->tls_cert, err);
    char *key = cert ? read_pem(cfg->tls_key, err) : NULL;
    grpc_server_credentials *creds = NULL;
    if (key) {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
        if (!creds) ls_fail(err, LS_EINVAL, "TLS: cannot use cert %s / key %s", cfg->tls_cert, cfg->tls_key);
    }
    free(cert);
    free(key);
    return creds;
}

static int build_methods(srv_server *srv, ls_err *err) {
    srv->methods = calloc((size_t)(SRV_BUILTIN_MAX + srv->app->n_methods), sizeof *srv->methods);
    if (!srv->methods) return ls_fail(err, LS_ENOMEM, "out of memory");
    srv->n_methods = srv_builtin_methods(srv->cfg, srv->methods, SRV_BUILTIN_MAX);
    for (int i = 0; i < srv->app->n_methods; i++) {
        const srv_method *m = &srv->app->methods[i];
        int j = 0;
        while (j < srv->n_methods && strcmp(srv->methods[j].path, m->path)) j++;
        srv->methods[j] = *m;
        if (j == srv->n_methods) srv->n_methods++;
    }
    return 0;
}

srv_server *srv_server_create(const srv_config *cfg, srv_app *app, srv_log *log, ls_err *err) {
    srv_server *srv = calloc(1, sizeof *srv);
    if (!srv) { ls_fail(err, LS_ENOMEM, "out of memory"); return NULL; }
    srv->cfg = cfg;
    srv->app = app;
    srv->log = log;
    srv->t_shutdown = (srv_tag){TAG_SHUTDOWN, NULL};
    srv->t_created_ns = srv_now_ns();
    srv->max_msg = (size_t)cfg->max_message_size_mb << 20;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cond, NULL);
    if (build_methods(srv, err)) goto fail;
    if (srv_queue_init(&srv->queue, cfg->worker_count, cfg->queue_depth)) {
        ls_fail(err, LS_ENOMEM, "out of memory");
        goto fail;
    }

    /* Per-worker arenas: the request copy plus protobuf-c's unpacked copy of its bytes fields,
     * plus what the app's handlers ask for. Untouched pages cost no memory. */
    size_t arena_bytes = 2 * srv->max_msg + (1u << 20) + app->arena_bytes;
    srv->workers = calloc((size_t)cfg->worker_count, sizeof *srv->workers);
    if (!srv->workers) { ls_fail(err, LS_ENOMEM, "out of memory"); goto fail; }
    for (int i = -1; i < cfg->worker_count; i++) {
        srv_worker *w = i < 0 ? &srv->io_worker : &srv->workers[i];
        w->srv = srv;
        w->index = i;
        if (arena_init(&w->arena, i < 0 ? IO_ARENA_BYTES : arena_bytes)) {
            ls_fail(err, LS_ENOMEM, "worker %d: cannot allocate a %zu-byte arena", i, arena_bytes);
            goto fail;
        }
        srv_worker_alloc_init(w);
        if (i >= 0 && app->worker_create) {
            w->app_state = app->worker_create(app->ctx, i, err);
            if (!w->app_state) { ls_wrap(err, "worker %d", i); goto fail; }
        }
    }

    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = (int)srv->max_msg}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = (int)srv->max_msg}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = cfg->keepalive_time_ms}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = cfg->keepalive_timeout_ms}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         {.integer = cfg->keepalive_permit_without_calls}},
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         {.integer = cfg->keepalive_min_ping_interval_ms}},
        /* gRPC sets SO_REUSEPORT by default: a second lipsyncd would silently share the port. */
        {GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
    };
    grpc_channel_args cargs = {sizeof args / sizeof *args, args};
    srv->server = grpc_server_create(&cargs, NULL);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    grpc_server_credentials *creds = make_creds(cfg, err);
    if (!creds) goto fail;
    int port = grpc_server_add_http2_port(srv->server, cfg->listen, creds);
    grpc_server_credentials_release(creds);
    if (port <= 0) {
        ls_fail(err, LS_EIO, "cannot listen on %s (address in use or invalid)", cfg->listen);
        goto fail;
    }
    const char *colon = strrchr(cfg->listen, ':');
    snprintf(srv->address, sizeof srv->address, "%.*s:%d", (int)(colon - cfg->listen), cfg->listen, port);

    srv->n_calls = cfg->worker_count + cfg->queue_depth + SPARE_SLOTS + cfg->stream_max_sessions + SRV_STREAM_SPARE;
    srv->calls = calloc((size_t)srv->n_calls, sizeof *srv->calls);
    if (!srv->calls) { ls_fail(err, LS_ENOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < srv->n_calls; i++) srv_call_init(&srv->calls[i], srv);
    return srv;
fail:
    srv_server_destroy(srv);
    return NULL;
}

int srv_server_start(srv_server *srv, ls_err *err) {
    grpc_server_start(srv->server);
    srv->grpc_started = 1;
    for (int i = 0; i < srv->n_calls; i++)
        if (srv_call_request(&srv->calls[i])) return ls_fail(err, LS_EINTERNAL, "grpc_server_request_call failed");
    if (pthread_create(&srv->io_thread, NULL, io_main, srv))
        return ls_fail(err, LS_EINTERNAL, "cannot start the I/O thread");
    srv->io_started = 1;
    for (int i = 0; i < srv->cfg->worker_count; i++) {
        int cpu = srv->app->worker_cpu ? srv->app->worker_cpu(srv->app->ctx, i) : -1;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        int bad = cpu >= 0 && ort_aff_thread_attr(&attr, cpu, err) != 0;
        int e = bad ? 0 : pthread_create(&srv->workers[i].thread, &attr, srv_worker_main, &srv->workers[i]);
        pthread_attr_destroy(&attr);
        if (bad) return ls_wrap(err, "worker %d", i);
        if (e) return ls_fail(err, LS_EINTERNAL, "cannot start worker %d%s", i, cpu >= 0 ? " (pinned)" : "");
        srv->workers[i].started = 1;
    }
    return 0;
}

static void deadline_after_ms(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

void srv_server_shutdown(srv_server *srv, volatile int *force) {
    if (!srv->grpc_started) return;
    /* Phase 1: health says NOT_SERVING, new calls get UNAVAILABLE, admitted calls finish. */
    atomic_store(&srv->draining, 1);
    int64_t end = srv_now_ns() + (int64_t)srv->cfg->shutdown_grace_ms * 1000000;
    pthread_mutex_lock(&srv->mu);
    while (srv->inflight > 0 && !(force && *force) && srv_now_ns() < end) {
        struct timespec ts;
        deadline_after_ms(&ts, 50); /* short waits so a second signal (force) is seen promptly */
        pthread_cond_timedwait(&srv->cond, &srv->mu, &ts);
    }
    int left = srv->inflight;
    pthread_mutex_unlock(&srv->mu);
    if (left) srv_logf(srv->log, SRV_LOG_WARN, "shutdown: grace over, cancelling %d calls", left);
    /* Phase 2: stop the gRPC server; cancel what is left (handlers see srv_request_cancelled).
     * Streams see draining 2 within their poll interval and end with UNAVAILABLE themselves. */
    atomic_store(&srv->draining, 2);
    int64_t stream_end = srv_now_ns() + 2000000000LL;
    pthread_mutex_lock(&srv->mu);
    while (srv->streams > 0 && srv_now_ns() < stream_end) {
        struct timespec ts;
        deadline_after_ms(&ts, 20);
        pthread_cond_timedwait(&srv->cond, &srv->mu, &ts);
    }
    left = srv->inflight;
    pthread_mutex_unlock(&srv->mu);
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->t_shutdown);
    if (left) grpc_server_cancel_all_calls(srv->server);
    pthread_mutex_lock(&srv->mu);
    while (!srv->shutdown_done || srv->streams > 0) pthread_cond_wait(&srv->cond, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
    srv_queue_close(&srv->queue);
    for (int i = 0; i < srv->cfg->worker_count; i++)
        if (srv->workers[i].started) pthread_join(srv->workers[i].thread, NULL), srv->workers[i].started = 0;
}

void srv_server_destroy(srv_server *srv) {
    if (!srv) return;
    if (srv->grpc_started && !srv->shutdown_done) srv_server_shutdown(srv, NULL);
    if (srv->server) grpc_server_destroy(srv->server);
    if (srv->cq) {
        grpc_completion_queue_shutdown(srv->cq);
        if (srv->io_started) pthread_join(srv->io_thread, NULL);
        else while (grpc_completion_queue_next(srv->cq, gpr_inf_past(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {}
        grpc_completion_queue_destroy(srv->cq);
    }
    if (srv->calls)
        for (int i = 0; i < srv->n_calls; i++) {
            grpc_metadata_array_destroy(&srv->calls[i].md);
            grpc_call_details_destroy(&srv->calls[i].details);
        }
    free(srv->calls);
    if (srv->workers)
        for (int i = 0; i < srv->cfg->worker_count; i++) {
            if (srv->workers[i].app_state && srv->app->worker_destroy)
                srv->app->worker_destroy(srv->app->ctx, srv->workers[i].app_state);
            arena_free(&srv->workers[i].arena);
        }
    arena_free(&srv->io_worker.arena);
    free(srv->workers);
    srv_queue_destroy(&srv->queue);
    free(srv->methods);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cond);
    free(srv);
}

void srv_server_stats(srv_server *srv, srv_stats *out) {
    srv_app_health h = {0};
    if (srv->app->health) srv->app->health(srv->app->ctx, &h);
    out->uptime_ms = (srv_now_ns() - srv->t_created_ns) / 1000000;
    out->requests_total = atomic_load(&srv->total);
    out->requests_failed = atomic_load(&srv->failed);
    out->requests_rejected = atomic_load(&srv->rejected);
    out->workers = srv->cfg->worker_count;
    out->workers_busy = atomic_load(&srv->busy);
    out->queue_depth = srv->cfg->queue_depth;
    out->queue_length = srv_queue_length(&srv->queue);
    out->serving = h.ready && !atomic_load(&srv->draining);
}

int srv_server_draining(const srv_server *srv) { return atomic_load(&srv->draining) != 0; }

const char *srv_server_address(const srv_server *srv) { return srv->address; }
