/* builtin.c - the method table the transport starts with: both health checks (real values from
 * the app and the server), GetStats, placeholders answering UNIMPLEMENTED "not wired yet" for the
 * rendering methods (the app's srv_app.methods replace them by path), and the test hooks: Sleep
 * (config testing.enable_sleep_method) and AllocCount (only in lipsyncd_alloccount). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "lipsync/v1/lipsync.pb-c.h"
#include "monolithic.pb-c.h"
#include "server/server_internal.h"

static void app_health(srv_request *req, srv_app_health *h) {
    memset(h, 0, sizeof *h);
    srv_app *app = req->server->app;
    if (app->health) app->health(app->ctx, h);
}

/* grpc.health.v1.Health/Check: "" and our services are known; SERVING once the app's preloads
 * are done and until shutdown starts. */
static int grpc_health_check(void *app, srv_request *req, srv_response *resp) {
    (void)app;
    Grpc__Health__V1__HealthCheckRequest *in = (Grpc__Health__V1__HealthCheckRequest *)
        srv_request_unpack(req, &grpc__health__v1__health_check_request__descriptor, resp);
    if (!in) return -1;
    static const char *const services[] = {"", "grpc.health.v1.Health", "monolithic.MonolithicService",
                                           "lipsync.v1.LipSync"};
    int known = 0;
    for (size_t i = 0; i < sizeof services / sizeof *services; i++)
        if (!strcmp(in->service, services[i])) known = 1;
    if (!known) return srv_response_fail(resp, GRPC_STATUS_NOT_FOUND, "unknown service '%s'", in->service);
    srv_app_health h;
    app_health(req, &h);
    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status = h.ready && !srv_server_draining(req->server)
                     ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                     : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    return srv_response_pack(resp, &out.base);
}

/* monolithic.MonolithicService/Health, with the Go server's fields. */
static int mono_health(void *app, srv_request *req, srv_response *resp) {
    (void)app;
    if (!srv_request_unpack(req, &monolithic__health_request__descriptor, resp)) return -1;
    srv_app_health h;
    app_health(req, &h);
    Monolithic__HealthResponse out = MONOLITHIC__HEALTH_RESPONSE__INIT;
    out.healthy = h.ready && !srv_server_draining(req->server);
    out.loaded_models = h.loaded_models;
    out.max_models = h.max_models;
    out.n_gpu_ids = (size_t)(h.n_gpus < 0 ? 0 : h.n_gpus > SRV_MAX_GPUS ? SRV_MAX_GPUS : h.n_gpus);
    out.gpu_ids = h.gpu_ids;
    out.n_gpu_memory_used_gb = out.n_gpu_ids;
    out.gpu_memory_used_gb = h.gpu_memory_used_gb;
    return srv_response_pack(resp, &out.base);
}

/* lipsync.v1.LipSync/GetStats: the transport's counters plus the app's health figures (loaded
 * avatars, their memory). */
static int v1_get_stats(void *app, srv_request *req, srv_response *resp) {
    (void)app;
    if (!srv_request_unpack(req, &lipsync__v1__get_stats_request__descriptor, resp)) return -1;
    srv_stats st;
    srv_server_stats(req->server, &st);
    srv_app_health h;
    app_health(req, &h);
    Lipsync__V1__GetStatsResponse out = LIPSYNC__V1__GET_STATS_RESPONSE__INIT;
    out.uptime_ms = st.uptime_ms;
    out.requests_total = st.requests_total;
    out.requests_failed = st.requests_failed;
    out.requests_rejected = st.requests_rejected;
    out.workers = st.workers;
    out.workers_busy = st.workers_busy;
    out.queue_depth = st.queue_depth;
    out.queue_length = st.queue_length;
    out.loaded_avatars = h.loaded_models;
    out.max_avatars = h.max_models;
    out.memory_bytes = h.memory_bytes;
    out.inference_host_bytes = h.inference_host_bytes;
    out.memory_budget_bytes = (int64_t)(req->server->cfg->max_memory_gb * 1073741824.0);
    out.serving = st.serving;
    Lipsync__V1__GpuStats gpus[SRV_MAX_GPUS], *gpu_ptrs[SRV_MAX_GPUS];
    for (int i = 0; i < h.n_gpus && i < SRV_MAX_GPUS; i++) {
        lipsync__v1__gpu_stats__init(&gpus[i]);
        gpus[i].gpu_id = h.gpu_ids[i];
        gpus[i].memory_bytes = h.gpu_memory_bytes[i];
        gpu_ptrs[i] = &gpus[i];
        out.n_gpus = (size_t)i + 1;
    }
    out.gpus = gpu_ptrs;
    return srv_response_pack(resp, &out.base);
}

static int not_wired(void *app, srv_request *req, srv_response *resp) {
    (void)app;
    return srv_response_fail(resp, GRPC_STATUS_UNIMPLEMENTED, "%s: not wired yet", req->method);
}

/* TEST HOOK (testing.enable_sleep_method): the request is ASCII "MS [REPLY_BYTES]". Sleeps MS
 * milliseconds in 5 ms steps, stopping early when the call is cancelled or past its deadline,
 * then replies REPLY_BYTES bytes of 'z' (default: the text "slept MS"). Used by the tests to hold
 * workers (overload, shutdown, cancellation) and to produce oversize replies. */
static int test_sleep(void *app, srv_request *req, srv_response *resp) {
    (void)app;
    char text[64];
    size_t n = req->len < sizeof text - 1 ? req->len : sizeof text - 1;
    memcpy(text, req->data, n);
    text[n] = 0;
    long ms = 0, reply = -1;
    if (sscanf(text, "%ld %ld", &ms, &reply) < 1 || ms < 0 || ms > 600000)
        return srv_response_fail(resp, GRPC_STATUS_INVALID_ARGUMENT, "expected 'MS [REPLY_BYTES]'");
    struct timespec step = {0, 5000000};
    for (long slept = 0; slept < ms; slept += 5) {
        int why = srv_request_cancelled(req);
        if (why)
            return srv_response_fail(resp, why == 2 ? GRPC_STATUS_DEADLINE_EXCEEDED : GRPC_STATUS_CANCELLED,
                                     "stopped after %ld ms", slept);
        nanosleep(&step, NULL);
    }
    srv_response_note(resp, "slept_ms=%ld", ms);
    if (reply < 0) {
        int len = snprintf(text, sizeof text, "slept %ld", ms);
        return srv_response_set_bytes(resp, text, (size_t)len);
    }
    if ((size_t)reply > resp->max_reply)
        return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "reply of %ld bytes exceeds the limit", reply);
    char *buf = arena_alloc(req->arena, (size_t)reply + 1, 64);
    if (!buf) return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "arena exhausted");
    memset(buf, 'z', (size_t)reply);
    return srv_response_set_bytes(resp, buf, (size_t)reply);
}

/* Defined only in lipsyncd_alloccount (src/server/testing/alloc_count.c); NULL elsewhere. */
extern int srv_testing_alloc_report(long long since, char *buf, size_t cap) __attribute__((weak));

/* TEST HOOK (lipsyncd_alloccount only): the request is ASCII "SINCE"; the reply is
 * "allocations=N\n" (allocation calls made by our code so far) and the call sites of the
 * remembered allocations numbered >= SINCE. Inline, so it never waits behind renders. */
static int test_alloc_count(void *app, srv_request *req, srv_response *resp) {
    (void)app;
    char text[32];
    size_t n = req->len < sizeof text - 1 ? req->len : sizeof text - 1;
    memcpy(text, req->data, n);
    text[n] = 0;
    long long since = 0;
    if (n && sscanf(text, "%lld", &since) != 1) since = 0;
    size_t cap = 16384;
    char *buf = arena_alloc(req->arena, cap, 64);
    if (!buf) return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "arena exhausted");
    int len = srv_testing_alloc_report(since, buf, cap);
    return srv_response_set_bytes(resp, buf, len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1);
}

static const srv_method METHODS[] = {
    {"/grpc.health.v1.Health/Check", grpc_health_check,
     SRV_METHOD_INLINE | SRV_METHOD_NOAUTH | SRV_METHOD_DRAINING},
    {"/monolithic.MonolithicService/Health", mono_health, SRV_METHOD_INLINE | SRV_METHOD_DRAINING},
    {"/monolithic.MonolithicService/InferBatchComposite", not_wired, 0},
    {"/monolithic.MonolithicService/ListModels", not_wired, 0},
    {"/monolithic.MonolithicService/LoadModel", not_wired, 0},
    {"/monolithic.MonolithicService/UnloadModel", not_wired, 0},
    {"/monolithic.MonolithicService/GetModelStats", not_wired, 0},
    {"/lipsync.v1.LipSync/Render", not_wired, 0},
    {"/lipsync.v1.LipSync/ListAvatars", not_wired, 0},
    {"/lipsync.v1.LipSync/LoadAvatar", not_wired, 0},
    {"/lipsync.v1.LipSync/UnloadAvatar", not_wired, 0},
    {"/lipsync.v1.LipSync/GetStats", v1_get_stats, SRV_METHOD_INLINE},
};

static const srv_method TEST_SLEEP = {"/lipsyncd.testing.Testing/Sleep", test_sleep, 0};
static const srv_method TEST_ALLOC_COUNT = {"/lipsyncd.testing.Testing/AllocCount", test_alloc_count,
                                            SRV_METHOD_INLINE | SRV_METHOD_DRAINING};

int srv_builtin_methods(const srv_config *cfg, srv_method *out, int cap) {
    int n = 0;
    for (size_t i = 0; i < sizeof METHODS / sizeof *METHODS && n < cap; i++) out[n++] = METHODS[i];
    if (cfg->testing_enable_sleep && n < cap) out[n++] = TEST_SLEEP;
    if (srv_testing_alloc_report && n < cap) out[n++] = TEST_ALLOC_COUNT;
    return n;
}

int srv_testing_alloc_counter_linked(void) { return srv_testing_alloc_report != NULL; }
