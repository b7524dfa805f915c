/* cmd_client.c - `lipsync client`: talks to a running lipsyncd over gRPC (src/client).
 *
 * Subcommands: render, bench (see cmd_client_render.c), stream (cmd_client_stream.c), avatars, health, load, unload, stats.
 * One option table serves all of them; each checks the options it needs. Exit status: 0 success,
 * 1 the server said no (non-OK status, in-band error, NOT_SERVING) or it is unreachable, 2 usage. */
#include "cli/cmd_client.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "client/client_msg.h"
#include "grpc/health/v1/health.pb-c.h"
#include "lipsync/v1/lipsync.pb-c.h"
#include "media/video_in.h"
#include "monolithic.pb-c.h"

void client_usage(FILE *out) {
    fprintf(out,
            "usage: lipsync client <command> [--server HOST:PORT] [options]\n\n"
            "commands:\n"
            "  render   --avatar ID --audio FILE --out OUT.mp4 [--api v1|compat] [--batch N]\n"
            "           [--start-frame K]   render through the server, write an MP4 with the audio\n"
            "  bench    --avatar ID --audio FILE [--api v1|compat] [--threads N] [--requests M]\n"
            "           [--batch B]         concurrent load; throughput and latency percentiles\n"
            "  stream   --avatar ID --audio FILE [--chunk-ms 20] [--realtime] [--pacing realtime|burst]\n"
            "           [--out OUT.mp4] [--frames DIR] [--lookahead N] [--idle-detect] [--jpeg-quality Q]\n"
            "           [--stats-ms MS]\n"
            "                               a live session (Stream): first-frame latency, jitter, drops\n"
            "  avatars  [--loaded-only]     list avatars (ListAvatars; --api compat: ListModels)\n"
            "  health                       grpc.health.v1 Check + monolithic Health; exit 0 if SERVING\n"
            "  load     --avatar ID         load an avatar (LoadAvatar; --api compat: LoadModel)\n"
            "  unload   --avatar ID         unload it (UnloadAvatar; --api compat: UnloadModel)\n"
            "  stats                        server statistics (GetStats; --api compat: GetModelStats)\n\n"
            "connection:\n"
            "  --server HOST:PORT   lipsyncd address (default $LIPSYNC_SERVER or %s)\n"
            "  --token TOKEN        bearer token (default $LIPSYNC_TOKEN)\n"
            "  --tls-ca FILE        use TLS; PEM roots the server certificate must chain to\n"
            "  --tls-name NAME      host name to verify in the certificate (default: from --server)\n"
            "  --timeout-ms MS      deadline of each call (default %d)\n"
            "  --max-message-mb MB  largest reply accepted (default %d)\n\n"
            "render/bench:\n"
            "  --api v1|compat      lipsync.v1.LipSync/Render (default) or the Go server's\n"
            "                       monolithic InferBatchComposite\n"
            "  --batch N            frames per request, 1..32; v1 default: the whole clip in one\n"
            "                       request; compat default 8. Each chunk's audio is processed by\n"
            "                       the server as a new clip (no context across chunk edges).\n"
            "  --start-frame K      avatar frame of the first output frame (default 0)\n"
            "  --threads N, --requests M   bench: N threads x M requests (default 4 x 10)\n"
            "  --quiet              render: no per-request lines\n\n"
            "stream:\n"
            "  --chunk-ms MS        audio chunk length, 1..10000 (default 20)\n"
            "  --realtime           send each chunk at its wall-clock time (default: back to back)\n"
            "  --pacing P           server output pacing: realtime (25 fps) or burst; default\n"
            "                       realtime with --realtime, else burst\n"
            "  --out OUT.mp4        write the frames with the audio; --frames DIR: NNNNNN.jpg by index\n"
            "  --lookahead N        1..7 encoder rows of look-ahead (default 7, exact)\n"
            "  --idle-detect        silence gate: idle frames without UNet runs\n"
            "  --jpeg-quality Q     1..100 (default: the server's)\n"
            "  --stats-ms MS        server statistics interval (default: the server's, 1000)\n"
            "  --timeout-ms MS      longest wait for any response before the call is cancelled\n",
            CLIENT_DEFAULT_SERVER, CLI_DEFAULT_TIMEOUT_MS, CLI_DEFAULT_MAX_MESSAGE_MB);
}

static int client_parse(int argc, char **argv, client_opts *o) {
    enum { O_SERVER = 256, O_TOKEN, O_TLS_CA, O_TLS_NAME, O_TIMEOUT, O_MAXMSG, O_AVATAR, O_AUDIO,
           O_OUT, O_API, O_BATCH, O_START, O_THREADS, O_REQUESTS, O_LOADED, O_QUIET,
           O_CHUNK, O_REALTIME, O_PACING, O_FRAMES, O_LOOKAHEAD, O_IDLE, O_QUALITY, O_STATS_MS };
    static const struct option longopts[] = {
        {"server", required_argument, 0, O_SERVER},   {"token", required_argument, 0, O_TOKEN},
        {"tls-ca", required_argument, 0, O_TLS_CA},   {"tls-name", required_argument, 0, O_TLS_NAME},
        {"timeout-ms", required_argument, 0, O_TIMEOUT},
        {"max-message-mb", required_argument, 0, O_MAXMSG},
        {"avatar", required_argument, 0, O_AVATAR},   {"audio", required_argument, 0, O_AUDIO},
        {"out", required_argument, 0, O_OUT},         {"api", required_argument, 0, O_API},
        {"batch", required_argument, 0, O_BATCH},     {"start-frame", required_argument, 0, O_START},
        {"threads", required_argument, 0, O_THREADS}, {"requests", required_argument, 0, O_REQUESTS},
        {"loaded-only", no_argument, 0, O_LOADED},    {"quiet", no_argument, 0, O_QUIET},
        {"chunk-ms", required_argument, 0, O_CHUNK},  {"realtime", no_argument, 0, O_REALTIME},
        {"pacing", required_argument, 0, O_PACING},   {"frames", required_argument, 0, O_FRAMES},
        {"lookahead", required_argument, 0, O_LOOKAHEAD}, {"idle-detect", no_argument, 0, O_IDLE},
        {"jpeg-quality", required_argument, 0, O_QUALITY}, {"stats-ms", required_argument, 0, O_STATS_MS},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    const char *env_server = getenv("LIPSYNC_SERVER"), *env_token = getenv("LIPSYNC_TOKEN");
    *o = (client_opts){.conn = {.target = env_server && *env_server ? env_server : CLIENT_DEFAULT_SERVER,
                                .token = env_token},
                       .threads = 4, .requests = 10, .chunk_ms = 20, .pacing = -1};
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_SERVER: o->conn.target = optarg; break;
        case O_TOKEN: o->conn.token = optarg; break;
        case O_TLS_CA: o->conn.tls_ca_path = optarg; break;
        case O_TLS_NAME: o->conn.tls_name = optarg; break;
        case O_TIMEOUT: if (cli_int("client", optarg, 1, 86400000, "--timeout-ms", &v)) return 2; o->conn.timeout_ms = (int)v; break;
        case O_MAXMSG: if (cli_int("client", optarg, 1, 2047, "--max-message-mb", &v)) return 2; o->conn.max_message_mb = (int)v; break;
        case O_AVATAR: o->avatar = optarg; break;
        case O_AUDIO: o->audio = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_API:
            if (!strcmp(optarg, "v1")) o->api = CLI_API_V1;
            else if (!strcmp(optarg, "compat")) o->api = CLI_API_COMPAT;
            else { fprintf(stderr, "lipsync client: --api must be v1 or compat, got '%s'\n", optarg); return 2; }
            break;
        case O_BATCH: if (cli_int("client", optarg, 1, 32, "--batch", &v)) return 2; o->batch = (int)v; break;
        case O_START: if (cli_int("client", optarg, 0, INT32_MAX, "--start-frame", &v)) return 2; o->start_frame = v; break;
        case O_THREADS: if (cli_int("client", optarg, 1, CLI_BENCH_MAX_THREADS, "--threads", &v)) return 2; o->threads = (int)v; break;
        case O_REQUESTS: if (cli_int("client", optarg, 1, 1000000, "--requests", &v)) return 2; o->requests = (int)v; break;
        case O_LOADED: o->loaded_only = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_CHUNK: if (cli_int("client", optarg, 1, 10000, "--chunk-ms", &v)) return 2; o->chunk_ms = (int)v; break;
        case O_REALTIME: o->realtime = 1; break;
        case O_PACING:
            if (!strcmp(optarg, "realtime")) o->pacing = 1;
            else if (!strcmp(optarg, "burst")) o->pacing = 0;
            else { fprintf(stderr, "lipsync client: --pacing must be realtime or burst, got '%s'\n", optarg); return 2; }
            break;
        case O_FRAMES: o->frames_dir = optarg; break;
        case O_LOOKAHEAD: if (cli_int("client", optarg, 1, 7, "--lookahead", &v)) return 2; o->lookahead = (int)v; break;
        case O_IDLE: o->idle_detect = 1; break;
        case O_QUALITY: if (cli_int("client", optarg, 1, 100, "--jpeg-quality", &v)) return 2; o->jpeg_quality = (int)v; break;
        case O_STATS_MS: if (cli_int("client", optarg, 1, 3600000, "--stats-ms", &v)) return 2; o->stats_ms = (int)v; break;
        case 'h': client_usage(stdout); return 1;
        default: client_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lipsync client: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* Prints a failed call's error as "lipsync client: CODE: message" and gives exit status 1. */
int client_fail(const ls_err *err) {
    fprintf(stderr, "lipsync client: %s\n", err->msg);
    return 1;
}

static int need_avatar(const client_opts *o, const char *cmd) {
    if (o->avatar && *o->avatar) return 0;
    fprintf(stderr, "lipsync client %s: --avatar ID is required\n", cmd);
    return 2;
}

static int do_health(cli_conn *conn) {
    ls_err err = {0};
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *h = (Grpc__Health__V1__HealthCheckResponse *)cli_call_msg(
        conn, "/grpc.health.v1.Health/Check", &hreq.base,
        &grpc__health__v1__health_check_response__descriptor, NULL, NULL, &err);
    if (!h) return client_fail(&err);
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
        &grpc__health__v1__health_check_response__serving_status__descriptor, (int)h->status);
    int serving = h->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    printf("grpc.health.v1: %s\n", ev ? ev->name : "UNKNOWN");
    protobuf_c_message_free_unpacked(&h->base, NULL);
    Monolithic__HealthRequest mreq = MONOLITHIC__HEALTH_REQUEST__INIT;
    Monolithic__HealthResponse *m = (Monolithic__HealthResponse *)cli_call_msg(
        conn, "/monolithic.MonolithicService/Health", &mreq.base,
        &monolithic__health_response__descriptor, NULL, NULL, &err);
    if (!m) return client_fail(&err);
    printf("monolithic: healthy=%s loaded_models=%d max_models=%d gpus=%zu\n",
           m->healthy ? "true" : "false", m->loaded_models, m->max_models, m->n_gpu_ids);
    int healthy = m->healthy;
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return serving && healthy ? 0 : 1;
}

static int do_avatars(cli_conn *conn, const client_opts *o) {
    ls_err err = {0};
    if (o->api == CLI_API_COMPAT) {
        Monolithic__ListModelsRequest req = MONOLITHIC__LIST_MODELS_REQUEST__INIT;
        Monolithic__ListModelsResponse *r = (Monolithic__ListModelsResponse *)cli_call_msg(
            conn, "/monolithic.MonolithicService/ListModels", &req.base,
            &monolithic__list_models_response__descriptor, NULL, NULL, &err);
        if (!r) return client_fail(&err);
        printf("%-24s %-6s %6s %10s %9s %10s\n", "MODEL", "LOADED", "GPU", "MEMORY_MB", "REQUESTS",
               "AVG_MS");
        for (size_t i = 0; i < r->n_models; i++) {
            const Monolithic__ModelInfo *m = r->models[i];
            printf("%-24s %-6s %6d %10" PRId64 " %9d %10.1f\n", m->model_id, m->loaded ? "yes" : "no",
                   m->gpu_id, m->memory_mb, m->request_count, (double)m->avg_inference_ms);
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return 0;
    }
    Lipsync__V1__ListAvatarsRequest req = LIPSYNC__V1__LIST_AVATARS_REQUEST__INIT;
    req.loaded_only = o->loaded_only;
    Lipsync__V1__ListAvatarsResponse *r = (Lipsync__V1__ListAvatarsResponse *)cli_call_msg(
        conn, "/lipsync.v1.LipSync/ListAvatars", &req.base,
        &lipsync__v1__list_avatars_response__descriptor, NULL, NULL, &err);
    if (!r) return client_fail(&err);
    printf("%-24s %-6s %7s %10s %10s %9s %10s %8s %6s\n", "AVATAR", "LOADED", "FRAMES", "SIZE",
           "MEMORY_MB", "REQUESTS", "RENDERED", "AVG_MS", "IN_USE");
    for (size_t i = 0; i < r->n_avatars; i++) {
        const Lipsync__V1__AvatarInfo *a = r->avatars[i];
        char size[32];
        snprintf(size, sizeof size, "%dx%d", a->frame_width, a->frame_height);
        printf("%-24s %-6s %7d %10s %10.1f %9" PRId64 " %10" PRId64 " %8.1f %6d\n", a->avatar_id,
               a->loaded ? "yes" : "no", a->num_frames, size, (double)a->memory_bytes / 1048576.0,
               a->request_count, a->frames_rendered, (double)a->avg_render_ms, a->in_use);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}

static int do_load(cli_conn *conn, const client_opts *o, int load) {
    ls_err err = {0};
    int rc;
    if ((rc = need_avatar(o, load ? "load" : "unload"))) return rc;
    if (o->api == CLI_API_COMPAT) {
        Monolithic__LoadModelRequest lreq = MONOLITHIC__LOAD_MODEL_REQUEST__INIT;
        Monolithic__UnloadModelRequest ureq = MONOLITHIC__UNLOAD_MODEL_REQUEST__INIT;
        lreq.model_id = ureq.model_id = (char *)o->avatar;
        ProtobufCMessage *r = load ? cli_call_msg(conn, "/monolithic.MonolithicService/LoadModel",
                                                  &lreq.base, &monolithic__load_model_response__descriptor,
                                                  NULL, NULL, &err)
                                   : cli_call_msg(conn, "/monolithic.MonolithicService/UnloadModel",
                                                  &ureq.base, &monolithic__unload_model_response__descriptor,
                                                  NULL, NULL, &err);
        if (!r) return client_fail(&err);
        int ok;
        const char *error;
        if (load) {
            Monolithic__LoadModelResponse *l = (Monolithic__LoadModelResponse *)r;
            ok = l->success, error = l->error;
            if (ok) printf("loaded %s in %.1f ms (gpu %d)\n", o->avatar, (double)l->load_time_ms, l->gpu_id);
        } else {
            Monolithic__UnloadModelResponse *u = (Monolithic__UnloadModelResponse *)r;
            ok = u->success, error = u->error;
            if (ok) printf("unloaded %s\n", o->avatar);
        }
        if (!ok) fprintf(stderr, "lipsync client: server error: %s\n", *error ? error : "(no message)");
        protobuf_c_message_free_unpacked(r, NULL);
        return ok ? 0 : 1;
    }
    if (load) {
        Lipsync__V1__LoadAvatarRequest req = LIPSYNC__V1__LOAD_AVATAR_REQUEST__INIT;
        req.avatar_id = (char *)o->avatar;
        Lipsync__V1__LoadAvatarResponse *r = (Lipsync__V1__LoadAvatarResponse *)cli_call_msg(
            conn, "/lipsync.v1.LipSync/LoadAvatar", &req.base,
            &lipsync__v1__load_avatar_response__descriptor, NULL, NULL, &err);
        if (!r) return client_fail(&err);
        if (r->already_loaded) printf("%s was already loaded\n", o->avatar);
        else printf("loaded %s in %.1f ms\n", o->avatar, (double)r->load_ms);
        if (r->avatar)
            printf("  %d frames %dx%d, %.1f MiB\n", r->avatar->num_frames, r->avatar->frame_width,
                   r->avatar->frame_height, (double)r->avatar->memory_bytes / 1048576.0);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return 0;
    }
    Lipsync__V1__UnloadAvatarRequest req = LIPSYNC__V1__UNLOAD_AVATAR_REQUEST__INIT;
    req.avatar_id = (char *)o->avatar;
    Lipsync__V1__UnloadAvatarResponse *r = (Lipsync__V1__UnloadAvatarResponse *)cli_call_msg(
        conn, "/lipsync.v1.LipSync/UnloadAvatar", &req.base,
        &lipsync__v1__unload_avatar_response__descriptor, NULL, NULL, &err);
    if (!r) return client_fail(&err);
    printf(r->deferred ? "%s is in use: it will be freed when its last call finishes\n"
                       : "unloaded %s\n", o->avatar);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}

static int do_stats(cli_conn *conn, const client_opts *o) {
    ls_err err = {0};
    if (o->api == CLI_API_COMPAT) {
        Monolithic__GetModelStatsRequest req = MONOLITHIC__GET_MODEL_STATS_REQUEST__INIT;
        Monolithic__GetModelStatsResponse *r = (Monolithic__GetModelStatsResponse *)cli_call_msg(
            conn, "/monolithic.MonolithicService/GetModelStats", &req.base,
            &monolithic__get_model_stats_response__descriptor, NULL, NULL, &err);
        if (!r) return client_fail(&err);
        printf("%-24s %-6s %10s %9s %12s %10s %12s\n", "MODEL", "LOADED", "MEMORY_MB", "REQUESTS",
               "TOTAL_MS", "AVG_MS", "LAST_USED");
        for (size_t i = 0; i < r->n_models; i++) {
            const Monolithic__ModelStats *m = r->models[i];
            printf("%-24s %-6s %10" PRId64 " %9d %12" PRId64 " %10.1f %12" PRId64 "\n", m->model_id,
                   m->loaded ? "yes" : "no", m->memory_mb, m->request_count, m->total_inference_ms,
                   (double)m->avg_inference_ms, m->last_used_timestamp);
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return 0;
    }
    Lipsync__V1__GetStatsRequest req = LIPSYNC__V1__GET_STATS_REQUEST__INIT;
    Lipsync__V1__GetStatsResponse *s = (Lipsync__V1__GetStatsResponse *)cli_call_msg(
        conn, "/lipsync.v1.LipSync/GetStats", &req.base, &lipsync__v1__get_stats_response__descriptor,
        NULL, NULL, &err);
    if (!s) return client_fail(&err);
    printf("serving:          %s\n"
           "uptime:           %.1f s\n"
           "requests:         %" PRId64 " total, %" PRId64 " failed, %" PRId64 " rejected (overload)\n"
           "workers:          %d busy of %d\n"
           "queue:            %d waiting of %d\n"
           "avatars:          %d loaded of %d\n"
           "memory:           %.1f MiB of %.1f MiB\n"
           "inference (host): %.1f MiB\n",
           s->serving ? "yes" : "no", (double)s->uptime_ms / 1e3, s->requests_total,
           s->requests_failed, s->requests_rejected, s->workers_busy, s->workers, s->queue_length,
           s->queue_depth, s->loaded_avatars, s->max_avatars, (double)s->memory_bytes / 1048576.0,
           (double)s->memory_budget_bytes / 1048576.0, (double)s->inference_host_bytes / 1048576.0);
    for (size_t i = 0; i < s->n_gpus; i++)
        printf("inference (gpu %d): %.1f MiB\n", s->gpus[i]->gpu_id, (double)s->gpus[i]->memory_bytes / 1048576.0);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return 0;
}

int cmd_client(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        client_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    media_quiet_ffmpeg_logs();
    const char *sub = argv[1];
    static const char *const subs[] = {"render", "bench", "stream", "avatars", "health", "load", "unload", "stats"};
    int known = 0;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) known |= !strcmp(sub, subs[i]);
    if (!known) {
        fprintf(stderr, "lipsync client: unknown command '%s'\n", sub);
        client_usage(stderr);
        return 2;
    }
    client_opts o;
    int rc = client_parse(argc - 1, argv + 1, &o);
    if (rc) return rc == 1 ? 0 : rc;
    ls_err err = {0};
    cli_conn *conn = cli_conn_open(&o.conn, &err);
    if (!conn) {
        fprintf(stderr, "lipsync client: %s\n", err.msg);
        return 2;
    }
    if (!strcmp(sub, "render")) rc = client_render(conn, &o);
    else if (!strcmp(sub, "bench")) rc = client_bench(conn, &o);
    else if (!strcmp(sub, "stream")) rc = client_stream(conn, &o);
    else if (!strcmp(sub, "avatars")) rc = do_avatars(conn, &o);
    else if (!strcmp(sub, "health")) rc = do_health(conn);
    else if (!strcmp(sub, "load")) rc = do_load(conn, &o, 1);
    else if (!strcmp(sub, "unload")) rc = do_load(conn, &o, 0);
    else rc = do_stats(conn, &o);
    cli_conn_close(conn);
    return rc;
}
