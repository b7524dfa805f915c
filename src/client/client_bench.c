/* client_bench.c - the load generator's threads and the latency summary. */
#include "client/client_bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_thread {
    const cli_bench_cfg *cfg;
    int index;
    pthread_t tid;
    double *lat, *server; /* cfg->requests entries each; n_ok used */
    size_t n_ok, n_failed, frames;
    int first_status;
    char first_error[512];
} bench_thread;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

cli_latency cli_latency_summary(double *v, size_t n) {
    cli_latency s = {0};
    if (n == 0) return s;
    qsort(v, n, sizeof *v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    /* Nearest rank: the smallest value with at least p% of the samples at or below it. */
    size_t r50 = (n * 50 + 99) / 100, r99 = (n * 99 + 99) / 100;
    s.p50 = v[r50 ? r50 - 1 : 0];
    s.p99 = v[r99 ? r99 - 1 : 0];
    s.mean = sum / (double)n;
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

static void *bench_main(void *arg) {
    bench_thread *t = arg;
    const cli_bench_cfg *cfg = t->cfg;
    size_t clip = cli_clip_frames(cfg->n_samples);
    size_t span = clip - (size_t)cfg->batch + 1; /* first frames at which a whole batch fits */
    for (int r = 0; r < cfg->requests; r++) {
        size_t k = ((size_t)(t->index * cfg->requests + r) * (size_t)cfg->batch) % span;
        size_t b, e;
        cli_chunk_audio(cfg->api, cfg->n_samples, k, (size_t)cfg->batch, &b, &e);
        cli_frames f;
        ls_err err = {0};
        int rc = cfg->api == CLI_API_V1
                     ? cli_render_v1(cfg->conn, cfg->avatar, cfg->pcm + b, e - b, (long long)k,
                                     cfg->batch, &f, &err)
                     : cli_render_compat(cfg->conn, cfg->avatar, cfg->pcm + b, e - b, cfg->batch,
                                         (int)k, &f, &err);
        if (rc == 0) {
            t->lat[t->n_ok] = f.rpc_ms;
            t->server[t->n_ok] = f.server_ms;
            t->n_ok++;
            t->frames += f.n;
        } else {
            if (t->n_failed++ == 0) {
                t->first_status = f.status;
                snprintf(t->first_error, sizeof t->first_error, "%s", err.msg);
            }
        }
        cli_frames_free(&f);
    }
    return NULL;
}

int cli_bench_run(const cli_bench_cfg *cfg, cli_bench_result *res, ls_err *err) {
    memset(res, 0, sizeof *res);
    if (!cfg->conn || !cfg->avatar || !cfg->pcm || cfg->threads < 1 ||
        cfg->threads > CLI_BENCH_MAX_THREADS || cfg->requests < 1 || cfg->batch < 1 || cfg->batch > 32)
        return ls_fail(err, LS_EINVAL, "bench needs 1..%d threads, >= 1 request, batch 1..32",
                       CLI_BENCH_MAX_THREADS);
    if (cli_clip_frames(cfg->n_samples) < (size_t)cfg->batch)
        return ls_fail(err, LS_EINVAL, "the audio has %zu frames, fewer than one batch of %d",
                       cli_clip_frames(cfg->n_samples), cfg->batch);
    size_t total = (size_t)cfg->threads * (size_t)cfg->requests;
    bench_thread *th = calloc((size_t)cfg->threads, sizeof *th);
    double *lat = malloc(total * sizeof *lat), *srv = malloc(total * sizeof *srv);
    if (!th || !lat || !srv) {
        free(th);
        free(lat);
        free(srv);
        return ls_fail(err, LS_ENOMEM, "out of memory");
    }
    int started = 0, rc = 0;
    double t0 = cli_now_ms();
    for (; started < cfg->threads; started++) {
        bench_thread *t = &th[started];
        t->cfg = cfg;
        t->index = started;
        t->lat = lat + (size_t)started * (size_t)cfg->requests;
        t->server = srv + (size_t)started * (size_t)cfg->requests;
        if (pthread_create(&t->tid, NULL, bench_main, t) != 0) {
            rc = ls_fail(err, LS_ENOMEM, "cannot start thread %d", started);
            break;
        }
    }
    for (int i = 0; i < started; i++) pthread_join(th[i].tid, NULL);
    res->wall_ms = cli_now_ms() - t0;
    /* Pack each thread's successful samples together before summarising. */
    size_t n = 0;
    for (int i = 0; i < started; i++) {
        memmove(lat + n, th[i].lat, th[i].n_ok * sizeof *lat);
        memmove(srv + n, th[i].server, th[i].n_ok * sizeof *srv);
        n += th[i].n_ok;
        res->failed += th[i].n_failed;
        res->frames += th[i].frames;
        if (th[i].n_failed && !res->first_error[0]) {
            res->first_status = th[i].first_status;
            snprintf(res->first_error, sizeof res->first_error, "%s", th[i].first_error);
        }
    }
    res->ok = n;
    res->latency = cli_latency_summary(lat, n);
    res->server = cli_latency_summary(srv, n);
    free(th);
    free(lat);
    free(srv);
    return rc;
}
