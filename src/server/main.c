/* main.c - lipsyncd: loads the config, blocks SIGINT/SIGTERM (before grpc_init, so every thread
 * gRPC starts inherits the mask), serves until the first signal, then shuts down gracefully; a
 * second signal cancels the remaining calls at once. Exit 0 after a clean shutdown, 2 for bad
 * usage or config, 1 when the server cannot start. */
#include <grpc/grpc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/hugepages.h"
#include "server/config.h"
#include "server/log.h"
#include "server/server.h"
#include "server/srv_app.h"

typedef struct {
    sigset_t set;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int signals;       /* how many SIGINT/SIGTERM arrived */
    volatile int force;/* second signal: cancel now */
    int stop;
    srv_log *log;
} sig_state;

/* The one thread that handles SIGINT/SIGTERM (they are blocked everywhere else). */
static void *signal_main(void *arg) {
    sig_state *s = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&s->set, &sig)) continue;
        pthread_mutex_lock(&s->mu);
        if (s->stop) { pthread_mutex_unlock(&s->mu); break; }
        s->signals++;
        if (s->signals >= 2) s->force = 1;
        srv_logf(s->log, SRV_LOG_INFO, "received %s: %s", sig == SIGINT ? "SIGINT" : "SIGTERM",
                 s->signals == 1 ? "shutting down gracefully" : "cancelling remaining calls");
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* The startup line of what was loaded: the config file, the `models:` entries (those preloaded
 * marked), how many avatars are in memory now, and the encoder of those entries (the listening
 * line names avatars_root). */
static void log_loaded(srv_log *log, const srv_config *cfg, const srv_app *app, const char *config_path) {
    srv_app_health h = {0};
    if (app->health) app->health(app->ctx, &h);
    char ids[320] = "";
    size_t used = 0;
    for (int i = 0; i < cfg->n_models && used + 1 < sizeof ids; i++) {
        const srv_model_cfg *m = &cfg->models[i];
        int n = snprintf(ids + used, sizeof ids - used, "%s%s%s", i ? ", " : "", m->id,
                         m->preload_model || m->preload_backgrounds ? " (preloaded)" : "");
        if (n < 0) break;
        used += (size_t)n;
    }
    srv_logf(log, SRV_LOG_INFO, "config %s; %d avatars loaded; models: %s; audio encoder %s",
             config_path ? config_path : "(defaults)", h.loaded_models, cfg->n_models ? ids : "none",
             cfg->audio_encoder);
}

static int usage(FILE *f, int rc) {
    fprintf(f, "usage: lipsyncd [--config FILE] [--listen HOST:PORT] [--check-config]\n");
    return rc;
}

int main(int argc, char **argv) {
    ls_hugepages_reexec(argv); /* first: it may start the program again */
    const char *config_path = NULL, *listen = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config_path = argv[++i];
        else if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen = argv[++i];
        else if (!strcmp(argv[i], "--check-config")) check_only = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout, 0);
        else return usage(stderr, 2);
    }
    srv_config cfg;
    ls_err err = {0};
    srv_config_defaults(&cfg);
    if ((config_path && srv_config_load(&cfg, config_path, &err)) ||
        (listen && srv_config_set_listen(&cfg, listen, &err))) {
        fprintf(stderr, "lipsyncd: config error: %s\n", err.msg);
        srv_config_free(&cfg);
        return 2;
    }
    if (check_only) {
        printf("lipsyncd: config OK\n");
        srv_config_free(&cfg);
        return 0;
    }

    sig_state sig = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    sigemptyset(&sig.set);
    sigaddset(&sig.set, SIGINT);
    sigaddset(&sig.set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sig.set, NULL);

    int rc = 1;
    srv_app app = {0};
    srv_server *srv = NULL;
    pthread_t sig_thread;
    int sig_started = 0;
    srv_log *log = srv_log_create(cfg.log_level, cfg.log_ring, stderr, &err);
    if (!log) { fprintf(stderr, "lipsyncd: %s\n", err.msg); srv_config_free(&cfg); return 1; }
    sig.log = log;
    grpc_init();
    if (srv_app_create(&app, &cfg, &err)) goto done;
    srv = srv_server_create(&cfg, &app, log, &err);
    if (!srv || srv_server_start(srv, &err)) goto done;
    if (pthread_create(&sig_thread, NULL, signal_main, &sig)) goto done;
    sig_started = 1;
    log_loaded(log, &cfg, &app, config_path); /* before "listening", which clients wait for */
    if (app.warning && app.warning[0]) srv_logf(log, SRV_LOG_WARN, "%s", app.warning);
    srv_logf(log, SRV_LOG_INFO, "lipsyncd listening on %s (%s%s), %d workers, queue %d, max message %d MiB, "
             "%d configured models, avatars_root %s, inference on %s", srv_server_address(srv),
             cfg.tls_cert[0] ? "TLS" : "plaintext", cfg.auth_token[0] ? ", bearer auth" : "",
             cfg.worker_count, cfg.queue_depth, cfg.max_message_size_mb, cfg.n_models, cfg.avatars_root,
             app.inference ? app.inference : "cpu");
    if (cfg.testing_enable_sleep)
        srv_logf(log, SRV_LOG_WARN, "test hook enabled: /lipsyncd.testing.Testing/Sleep");
    if (srv_testing_alloc_counter_linked())
        srv_logf(log, SRV_LOG_WARN, "test build: allocations counted, /lipsyncd.testing.Testing/AllocCount");

    pthread_mutex_lock(&sig.mu);
    while (!sig.signals) pthread_cond_wait(&sig.cond, &sig.mu);
    pthread_mutex_unlock(&sig.mu);
    srv_server_shutdown(srv, &sig.force);
    srv_logf(log, SRV_LOG_INFO, "lipsyncd stopped");
    rc = 0;
done:
    if (rc) srv_logf(log, SRV_LOG_ERROR, "lipsyncd: %s", err.msg);
    if (sig_started) {
        pthread_mutex_lock(&sig.mu);
        sig.stop = 1;
        pthread_mutex_unlock(&sig.mu);
        pthread_kill(sig_thread, SIGTERM); /* blocked here, so sigwait returns it to the thread */
        pthread_join(sig_thread, NULL);
    }
    srv_server_destroy(srv);
    if (app.destroy) app.destroy(app.ctx);
    grpc_shutdown();
    srv_log_destroy(log);
    srv_config_free(&cfg);
    return rc;
}
