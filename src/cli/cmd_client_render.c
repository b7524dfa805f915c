/* cmd_client_render.c - `lipsync client render` (audio file -> frames from lipsyncd -> MP4 with the
 * audio) and `lipsync client bench` (concurrent load, throughput and latency percentiles). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/pcm.h"
#include "cli/cmd_client.h"
#include "client/client_sink.h"

#define CLIENT_COMPAT_DEFAULT_BATCH 8

static const char *api_name(cli_api api) { return api == CLI_API_V1 ? "v1" : "compat"; }

/* Loads the audio named by --audio at 16 kHz; checks it covers at least one video frame. */
static float *load_audio(const client_opts *o, const char *cmd, size_t *n, size_t *frames) {
    if (!o->avatar || !*o->avatar || !o->audio) {
        fprintf(stderr, "lipsync client %s: --avatar ID and --audio FILE are required\n", cmd);
        return NULL;
    }
    ls_err err = {0};
    float *pcm = pcm_load_file(o->audio, 0, n, &err);
    if (!pcm) {
        fprintf(stderr, "lipsync client: %s\n", err.msg);
        return NULL;
    }
    *frames = cli_clip_frames(*n);
    if (*frames == 0) {
        fprintf(stderr, "lipsync client: %s: audio too short (%.3f s) for one video frame\n", o->audio,
                (double)*n / PCM_RATE);
        free(pcm);
        return NULL;
    }
    return pcm;
}

/* Appends which request failed, keeping the message's "CODE: message" start. */
static int add_context(ls_err *err, size_t req, size_t k, size_t count) {
    char ctx[96];
    snprintf(ctx, sizeof ctx, " (request %zu, frames %zu..%zu)", req, k, k + count - 1);
    size_t used = strnlen(err->msg, sizeof err->msg - 1);
    snprintf(err->msg + used, sizeof err->msg - used, "%s", ctx);
    return -1;
}

/* Sends the requests of one render and feeds the sink; fills lat[] (one per request). */
static int render_requests(cli_conn *conn, const client_opts *o, const float *pcm, size_t n,
                           size_t clip_frames, cli_sink *sink, double *lat, size_t *n_req,
                           ls_err *err) {
    int batch = o->batch ? o->batch : o->api == CLI_API_COMPAT ? CLIENT_COMPAT_DEFAULT_BATCH : 0;
    size_t k = 0;
    *n_req = 0;
    while (k < clip_frames) {
        size_t count = batch ? clip_frames - k : clip_frames;
        if (batch && count > (size_t)batch) count = (size_t)batch;
        size_t b = 0, e = n;
        if (batch) cli_chunk_audio(o->api, n, k, count, &b, &e);
        long long first = o->start_frame + (long long)k;
        if (o->api == CLI_API_COMPAT && first > INT32_MAX)
            return ls_fail(err, LS_EINVAL, "start frame %lld does not fit the compat API's int32", first);
        cli_frames f;
        int rc = o->api == CLI_API_V1
                     ? cli_render_v1(conn, o->avatar, pcm + b, e - b, first, batch ? (int)count : 0, &f, err)
                     : cli_render_compat(conn, o->avatar, pcm + b, e - b, (int)count, (int)first, &f, err);
        if (rc != 0) return add_context(err, *n_req, k, count);
        lat[(*n_req)++] = f.rpc_ms;
        if (!o->quiet)
            fprintf(stderr, "request %zu: frames %zu..%zu  rpc %.1f ms  server %.1f ms\n", *n_req - 1,
                    k, k + f.n - 1, f.rpc_ms, f.server_ms);
        for (size_t i = 0; i < f.n && rc == 0; i++) rc = cli_sink_add_jpeg(sink, f.jpeg[i].data, f.jpeg[i].len, err);
        k += f.n;
        cli_frames_free(&f);
        if (rc != 0) return -1;
        if (!batch) break; /* one request renders the whole clip */
    }
    return 0;
}

int client_render(cli_conn *conn, const client_opts *o) {
    if (!o->out) {
        fprintf(stderr, "lipsync client render: --out OUT.mp4 is required\n");
        return 2;
    }
    size_t n, clip_frames;
    float *pcm = load_audio(o, "render", &n, &clip_frames);
    if (!pcm) return 2;
    ls_err err = {0};
    double *lat = malloc(clip_frames * sizeof *lat); /* at most one request per frame */
    cli_sink *sink = lat ? cli_sink_open(o->out, pcm, n, &err) : NULL;
    if (!sink) {
        free(lat);
        free(pcm);
        if (!err.msg[0]) ls_fail(&err, LS_ENOMEM, "out of memory");
        return client_fail(&err);
    }
    double t0 = cli_now_ms();
    size_t n_req = 0;
    int rc = render_requests(conn, o, pcm, n, clip_frames, sink, lat, &n_req, &err);
    int w, h;
    size_t frames = cli_sink_frames(sink, &w, &h);
    if (rc == 0) {
        rc = cli_sink_close(sink, &err);
    } else {
        cli_sink_abort(sink);
    }
    if (rc != 0) {
        unlink(o->out); /* no half-written video left behind */
        free(lat);
        free(pcm);
        return client_fail(&err);
    }
    double wall = cli_now_ms() - t0, rpc_sum = 0;
    for (size_t i = 0; i < n_req; i++) rpc_sum += lat[i];
    cli_latency s = cli_latency_summary(lat, n_req);
    fprintf(stderr,
            "wrote %s: %zu frames %dx%d, %.2f s of audio (api %s, %zu requests)\n"
            "total %.2f s: %.1f frames/s end to end, %.1f frames/s in calls; "
            "request latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
            o->out, frames, w, h, (double)n / PCM_RATE, api_name(o->api), n_req, wall / 1e3,
            (double)frames * 1e3 / wall, rpc_sum > 0 ? (double)frames * 1e3 / rpc_sum : 0.0, s.p50,
            s.p99, s.max);
    free(lat);
    free(pcm);
    return 0;
}

int client_bench(cli_conn *conn, const client_opts *o) {
    size_t n, clip_frames;
    float *pcm = load_audio(o, "bench", &n, &clip_frames);
    if (!pcm) return 2;
    cli_bench_cfg cfg = {.conn = conn, .api = o->api, .avatar = o->avatar, .pcm = pcm, .n_samples = n,
                         .threads = o->threads, .requests = o->requests,
                         .batch = o->batch ? o->batch : CLIENT_COMPAT_DEFAULT_BATCH};
    cli_bench_result r;
    ls_err err = {0};
    int rc = cli_bench_run(&cfg, &r, &err);
    free(pcm);
    if (rc != 0) return client_fail(&err);
    printf("api %s, %d threads x %d requests, batch %d: %zu ok, %zu failed in %.2f s\n",
           api_name(o->api), cfg.threads, cfg.requests, cfg.batch, r.ok, r.failed, r.wall_ms / 1e3);
    printf("throughput: %.1f frames/s, %.1f requests/s\n", (double)r.frames * 1e3 / r.wall_ms,
           (double)r.ok * 1e3 / r.wall_ms);
    printf("latency per request (client): p50 %.1f ms, p99 %.1f ms, mean %.1f ms, min %.1f, max %.1f\n",
           r.latency.p50, r.latency.p99, r.latency.mean, r.latency.min, r.latency.max);
    printf("server total per request:     p50 %.1f ms, p99 %.1f ms, mean %.1f ms\n", r.server.p50,
           r.server.p99, r.server.mean);
    if (r.failed)
        fprintf(stderr, "lipsync client: %zu requests failed; first: %s\n", r.failed, r.first_error);
    return r.failed ? 1 : 0;
}
