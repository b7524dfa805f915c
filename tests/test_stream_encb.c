/* test_stream_encb.c - the audio-encoder batcher (stream_encb.h): concurrent callers share runs
 * and each gets exactly the rows a direct run of its own windows gives; a failed run fails every
 * request it carried and leaves the batcher usable; requests over the capacity run in parts; a
 * lone caller does not wait; many callers with random sizes under load all get their own rows
 * (run under the sanitizer build: requests live on the callers' stacks). */
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "infer/ort_runtime.h"
#include "server/stream_encb.h"

#define NT 8           /* concurrent callers */
#define MAXW 40        /* windows one caller sends at most */
#define POOL 96        /* distinct windows of the stress test */

static struct {
    ort_runtime *rt;
    ort_model *ave, *demo, *poison;
} fx;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Normalised-mel-like windows in -4..4, different for every seed. */
static void windows(float *w, int n, unsigned seed) {
    for (size_t i = 0; i < (size_t)n * ORT_ENC_MEL_ELEMS; i++) {
        seed = seed * 1103515245u + 12345u;
        w[i] = (float)((seed >> 8) & 0xffff) / 65536.0f * 8.0f - 4.0f;
    }
}

/* The rows a direct run of exactly these n windows gives (one binding, one run). */
static int direct(ort_model *m, const float *w, int n, float *out, ls_err *err) {
    static float in[MAXW * ORT_ENC_MEL_ELEMS], res[MAXW * ORT_ENC_FEAT_ELEMS];
    void *inputs[1] = {in};
    ort_binding *b = ort_binding_create(m, MAXW, inputs, res, err);
    if (!b) return -1;
    memcpy(in, w, (size_t)n * ORT_ENC_MEL_ELEMS * sizeof(float));
    int rc = ort_binding_run(b, n, err);
    memcpy(out, res, (size_t)n * ORT_ENC_FEAT_ELEMS * sizeof(float));
    ort_binding_destroy(b);
    return rc;
}

typedef struct caller {
    encb *b;
    pthread_barrier_t *go;
    int n, rc, calls;
    unsigned seed;
    float in[MAXW * ORT_ENC_MEL_ELEMS], out[MAXW * ORT_ENC_FEAT_ELEMS];
    ls_err err;
    int mismatches;        /* stress: rows that differ from the pool's reference */
} caller;

static void *call_once(void *arg) {
    caller *c = arg;
    encb_attach(c->b);
    pthread_barrier_wait(c->go);
    c->rc = encb_run(c->b, c->in, c->n, c->out, &c->err);
    encb_detach(c->b);
    return NULL;
}

/* Starts one thread per caller on a barrier and joins them. */
static void run_callers(caller *cs, int n) {
    pthread_t t[NT];
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, call_once, &cs[i]);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

TEST(concurrent_callers_share_runs_and_get_their_own_rows) {
    ls_err err = {0};
    /* The leader waits for every attached caller (or 1 s): all 8 meet in one run. */
    encb *b = encb_create(fx.ave, 128, 1000000, &err);
    CHECK(b, "batcher: %s", err.msg);
    static caller cs[NT];
    static float ref[NT][MAXW * ORT_ENC_FEAT_ELEMS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NT);
    for (int i = 0; i < NT; i++) {
        cs[i] = (caller){.b = b, .go = &go, .n = 1 + i % 5};
        windows(cs[i].in, cs[i].n, 100u + (unsigned)i);
        CHECK(direct(fx.ave, cs[i].in, cs[i].n, ref[i], &err) == 0, "direct run: %s", err.msg);
    }
    run_callers(cs, NT);
    pthread_barrier_destroy(&go);
    encb_stats st;
    encb_stats_get(b, &st);
    encb_destroy(b);
    for (int i = 0; i < NT; i++) {
        CHECK(cs[i].rc == 0, "caller %d: %s", i, cs[i].err.msg);
        /* Same windows through the same CPU kernels, whatever else shares the batch: tolerance 0
         * (the convolutions run per batch item; checked bit for bit). */
        CHECK(memcmp(cs[i].out, ref[i], (size_t)cs[i].n * ORT_ENC_FEAT_ELEMS * sizeof(float)) == 0,
              "caller %d's %d rows equal a direct run of its own windows", i, cs[i].n);
    }
    CHECK(st.requests == NT && st.windows == 21, "%llu requests, %llu windows", (unsigned long long)st.requests,
          (unsigned long long)st.windows);
    CHECK(st.runs < st.requests && st.shared_runs >= 1, "shared runs: %llu runs (%llu shared) for %llu requests",
          (unsigned long long)st.runs, (unsigned long long)st.shared_runs, (unsigned long long)st.requests);
    CHECK(st.attached == 0, "every caller detached");
    printf("     %d callers: %llu run(s), %llu shared, largest %llu windows\n", NT, (unsigned long long)st.runs,
           (unsigned long long)st.shared_runs, (unsigned long long)st.max_windows);
}

TEST(a_failed_run_fails_every_request_it_carried) {
    ls_err err = {0};
    encb *b = encb_create(fx.poison, 128, 1000000, &err);
    CHECK(b, "batcher: %s", err.msg);
    enum { N = 4 };
    static caller cs[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        cs[i] = (caller){.b = b, .go = &go, .n = 2};
        windows(cs[i].in, 2, 200u + (unsigned)i);
    }
    cs[2].in[ORT_ENC_MEL_ELEMS + 5] = 100.0f; /* caller 2's second window makes its run fail */
    run_callers(cs, N); /* they meet in one run */
    pthread_barrier_destroy(&go);
    encb_stats st;
    encb_stats_get(b, &st);
    for (int i = 0; i < N; i++)
        CHECK(cs[i].rc == -1 && cs[i].err.code == LS_EMODEL && strstr(cs[i].err.msg, "audio encoder"),
              "caller %d gets the run's error (rc %d: %s)", i, cs[i].rc, cs[i].err.msg);
    CHECK(st.failed_runs == 1 && st.runs == 0, "one failed run (%llu), none counted as done",
          (unsigned long long)st.failed_runs);
    /* The batcher is usable afterwards: clean windows run. */
    err = (ls_err){0};
    int rc = encb_run(b, cs[0].in, 2, cs[0].out, &err);
    encb_destroy(b);
    CHECK(rc == 0, "a later run succeeds: %s", err.msg);
}

TEST(requests_over_the_capacity_run_in_parts_and_bad_ones_are_refused) {
    ls_err err = {0};
    encb *b = encb_create(fx.ave, 4, 0, &err);
    CHECK(b, "batcher: %s", err.msg);
    static float in[10 * ORT_ENC_MEL_ELEMS], out[10 * ORT_ENC_FEAT_ELEMS], ref[10 * ORT_ENC_FEAT_ELEMS];
    windows(in, 10, 300);
    CHECK(direct(fx.ave, in, 10, ref, &err) == 0, "direct: %s", err.msg);
    int rc = encb_run(b, in, 10, out, &err);
    int rc0 = encb_run(b, in, 0, out, &err);
    encb_stats st;
    encb_stats_get(b, &st);
    ls_err e1 = {0}, e2 = {0};
    int bad_ptr = encb_run(b, NULL, 2, out, &e1), bad_n = encb_run(b, in, -1, out, &e2);
    encb_destroy(b);
    CHECK(rc == 0 && rc0 == 0, "10 and 0 windows: %s", err.msg);
    CHECK(st.runs == 3 && st.windows == 10, "10 windows in parts of 4: %llu runs", (unsigned long long)st.runs);
    CHECK(memcmp(out, ref, sizeof out) == 0, "the parts' rows equal one direct run of 10 (tolerance 0)");
    CHECK(bad_ptr == -1 && e1.code == LS_EINVAL && bad_n == -1 && e2.code == LS_EINVAL, "bad requests refused");
    CHECK(!encb_create(fx.ave, 0, 0, &err) && err.code == LS_EINVAL, "capacity 0 refused");
    CHECK(!encb_create(fx.ave, 4, -1, &err) && err.code == LS_EINVAL, "negative wait refused");
}

TEST(a_lone_caller_does_not_wait_and_a_leader_waits_for_attached_ones) {
    ls_err err = {0};
    encb *b = encb_create(fx.demo, 128, 200000, &err); /* 200 ms */
    CHECK(b, "batcher: %s", err.msg);
    static float in[ORT_ENC_MEL_ELEMS], out[ORT_ENC_FEAT_ELEMS];
    windows(in, 1, 9);
    encb_attach(b);
    uint64_t t0 = now_ns();
    int rc1 = encb_run(b, in, 1, out, &err);
    uint64_t alone = now_ns() - t0;
    encb_attach(b); /* a second session that does not push */
    t0 = now_ns();
    int rc2 = encb_run(b, in, 1, out, &err);
    uint64_t waited = now_ns() - t0;
    encb_detach(b);
    encb_detach(b);
    encb_destroy(b);
    CHECK(rc1 == 0 && rc2 == 0, "runs: %s", err.msg);
    CHECK(alone < 100000000ull, "alone: no wait (%.1f ms of a 200 ms max wait)", alone / 1e6);
    CHECK(waited >= 195000000ull, "with another session attached the leader waits max_wait (%.1f ms)", waited / 1e6);
}

/* ---- stress: random sizes, many calls, all threads at once ---- */

static float pool_in[POOL * ORT_ENC_MEL_ELEMS], pool_ref[POOL * ORT_ENC_FEAT_ELEMS];

static void *call_many(void *arg) {
    caller *c = arg;
    encb_attach(c->b);
    pthread_barrier_wait(c->go);
    for (int k = 0; k < c->calls; k++) {
        c->seed = c->seed * 1103515245u + 12345u;
        int n = 1 + (int)((c->seed >> 16) % MAXW);
        int at = (int)((c->seed >> 4) % (POOL - MAXW));
        if (encb_run(c->b, pool_in + (size_t)at * ORT_ENC_MEL_ELEMS, n, c->out, &c->err) != 0) { c->rc = -1; break; }
        if (memcmp(c->out, pool_ref + (size_t)at * ORT_ENC_FEAT_ELEMS, (size_t)n * ORT_ENC_FEAT_ELEMS * sizeof(float)))
            c->mismatches++;
    }
    encb_detach(c->b);
    return NULL;
}

TEST(many_callers_with_random_sizes_all_get_their_own_rows) {
    ls_err err = {0};
    windows(pool_in, POOL, 400);
    for (int i = 0; i < POOL; i++) /* one window per direct run: the reference of any batching */
        CHECK(direct(fx.demo, pool_in + (size_t)i * ORT_ENC_MEL_ELEMS, 1, pool_ref + (size_t)i * ORT_ENC_FEAT_ELEMS,
                     &err) == 0, "direct: %s", err.msg);
    encb *b = encb_create(fx.demo, 32, 300, &err); /* requests of up to 40: some split */
    CHECK(b, "batcher: %s", err.msg);
    static caller cs[NT];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NT);
    pthread_t t[NT];
    for (int i = 0; i < NT; i++) {
        cs[i] = (caller){.b = b, .go = &go, .calls = 60, .seed = 500u + (unsigned)i};
        pthread_create(&t[i], NULL, call_many, &cs[i]);
    }
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    encb_stats st;
    encb_stats_get(b, &st);
    encb_destroy(b);
    for (int i = 0; i < NT; i++)
        CHECK(cs[i].rc == 0 && cs[i].mismatches == 0, "caller %d: rc %d, %d calls with wrong rows: %s", i, cs[i].rc,
              cs[i].mismatches, cs[i].err.msg);
    CHECK(st.runs < st.requests, "%llu runs for %llu requests (%llu shared)", (unsigned long long)st.runs,
          (unsigned long long)st.requests, (unsigned long long)st.shared_runs);
    printf("     stress: %llu runs for %llu requests, %llu windows, %llu shared\n", (unsigned long long)st.runs,
           (unsigned long long)st.requests, (unsigned long long)st.windows, (unsigned long long)st.shared_runs);
}

int main(void) {
    ls_err err = {0};
    ort_model_opts mo = {.intra_threads = 1};
    if (!(fx.rt = ort_runtime_create(NULL, &err)) ||
        !(fx.ave = ort_model_load(fx.rt, check_model("ave_encoder.onnx"), ORT_ROLE_ENCODER, &mo, &err)) ||
        !(fx.demo = ort_model_load(fx.rt, check_model("demo_encoder.onnx"), ORT_ROLE_ENCODER, &mo, &err)) ||
        !(fx.poison = ort_model_load(fx.rt, check_model("poison_encoder.onnx"), ORT_ROLE_ENCODER, &mo, &err))) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return 1;
    }
    RUN(concurrent_callers_share_runs_and_get_their_own_rows);
    RUN(a_failed_run_fails_every_request_it_carried);
    RUN(requests_over_the_capacity_run_in_parts_and_bad_ones_are_refused);
    RUN(a_lone_caller_does_not_wait_and_a_leader_waits_for_attached_ones);
    RUN(many_callers_with_random_sizes_all_get_their_own_rows);
    ort_model_destroy(fx.poison);
    ort_model_destroy(fx.demo);
    ort_model_destroy(fx.ave);
    ort_runtime_destroy(fx.rt);
    return check_summary();
}
