/* client_bench.h - load generator: N threads each send M rendering requests of B frames to one
 * lipsyncd channel and time them; plus the latency summary the client prints.
 *
 * Request r of thread t renders frames k .. k+B-1 of the clip with k = ((t*M + r) * B) modulo the
 * frames the clip offers (so requests differ but stay inside the audio), from avatar frame k, with
 * cli_chunk_audio's samples: v1 Render with max_frames B, or compat InferBatchComposite of batch B.
 * Requests that fail are counted (with the first failure's message kept), not retried. The
 * channel is shared (gRPC multiplexes the calls on one HTTP/2 connection; lipsyncd spreads them
 * over its workers). Allocates (per thread and per call). */
#ifndef LS_CLIENT_BENCH_H
#define LS_CLIENT_BENCH_H

#include <stddef.h>

#include "client/client_render.h"

#define CLI_BENCH_MAX_THREADS 256

typedef struct cli_bench_cfg {
    cli_conn *conn;
    cli_api api;
    const char *avatar;
    const float *pcm; /* 16 kHz mono; must cover at least `batch` frames (cli_clip_frames) */
    size_t n_samples;
    int threads;      /* 1..CLI_BENCH_MAX_THREADS */
    int requests;     /* per thread, >= 1 */
    int batch;        /* frames per request, 1..32 */
} cli_bench_cfg;

typedef struct cli_latency {
    double p50, p99, mean, min, max; /* milliseconds; nearest-rank percentiles */
} cli_latency;

typedef struct cli_bench_result {
    size_t ok, failed;
    size_t frames;           /* frames received in successful requests */
    double wall_ms;          /* first request sent to last reply */
    cli_latency latency;     /* client-observed, successful requests only */
    cli_latency server;      /* the server's own total per request */
    int first_status;        /* gRPC status of the first failure (OK when none) */
    char first_error[512];
} cli_bench_result;

/* Runs the load; returns 0 when it ran (failed requests are in res), -1 for bad cfg / no threads. */
int cli_bench_run(const cli_bench_cfg *cfg, cli_bench_result *res, ls_err *err);

/* Summarises v[0 .. n) (sorted in place); all zero when n == 0. */
cli_latency cli_latency_summary(double *v, size_t n);

#endif
