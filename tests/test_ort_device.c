/* test_ort_device.c - the binding's device-tensor path (src/infer/ort_binding.c), without a GPU:
 * on host memory standing in for a GPU's (host_device.h): the allocator lookup, device views and
 * IoBindings per batch size, the copies in and out (memcpy here, counted). Every batch size,
 * fixed-batch staging and the uint8-wrapped UNet must give the host path's output exactly (same
 * kernels, same inputs: tolerance 0) and move exactly the batch's items; a resident run moves
 * nothing. Then the GPU lock (ort_runtime.h): a CUDA-graph binding's first runs on a thread
 * exclude all other GPU work, later ones do not, and graphs without device tensors are refused. */
#include "check.h"
#include "common/err.h"
#include "host_device.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static ort_runtime *rt;
static OrtMemoryInfo *device_mem; /* the CPU's, as the "device" memory */

/* Deterministic inputs: byte patterns for uint8 tensors, values in [0, 1) for float ones. Every
 * item differs, so a run that read the wrong item or view set would give another output. */
static void fill_inputs(ort_role role, int max_batch, void **in) {
    int n_in = ORT_ROLE_SPECS[role].n_in;
    uint32_t x = 12345;
    for (int j = 0; j < n_in; j++) {
        const tensor_spec *t = &ORT_ROLE_SPECS[role].in[j];
        size_t n = (size_t)max_batch * ort_spec_elems(t);
        for (size_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            if (t->type == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8) ((uint8_t *)in[j])[i] = (uint8_t)(x >> 24);
            else ((float *)in[j])[i] = (float)(x >> 8) / 16777216.0f;
        }
    }
}

typedef struct {
    ort_model *m;
    void *in[MAX_INPUTS];
    void *out;
    ort_binding *b;
    size_t out_bytes; /* per item */
} rig;

static void rig_close(rig *r) {
    ort_binding_destroy(r->b);
    ort_model_destroy(r->m);
    for (int j = 0; j < MAX_INPUTS; j++) free(r->in[j]);
    free(r->out);
}

/* A model with max_batch items of inputs; with `device`, its bindings take the device path. On
 * failure nothing is left open. */
static int rig_open(rig *r, const char *name, int uint8_io, int max_batch, const OrtMemoryInfo *device, ls_err *e) {
    memset(r, 0, sizeof *r);
    ort_model_opts o = {.uint8_io = uint8_io};
    ort_role role = strstr(name, "encoder") ? ORT_ROLE_ENCODER : ORT_ROLE_UNET;
    if (!(r->m = ort_model_load(rt, check_model(name), role, &o, e))) return -1;
    role = ort_model_role(r->m);
    if (device) host_device_use(r->m, device);
    int ok = 1;
    for (int j = 0; j < ORT_ROLE_SPECS[role].n_in; j++)
        ok = ok && (r->in[j] = calloc((size_t)max_batch, ort_role_input_bytes(role, j))) != NULL;
    r->out_bytes = ort_role_output_bytes(role);
    ok = ok && (r->out = calloc((size_t)max_batch, r->out_bytes)) != NULL;
    if (ok) fill_inputs(role, max_batch, r->in);
    if (!ok || !(r->b = ort_binding_create(r->m, max_batch, r->in, r->out, e))) {
        rig_close(r);
        return -1;
    }
    return 0;
}

/* Runs `batch` items on both rigs (output cleared first) and compares the outputs byte for byte. */
static int run_both(rig *host, rig *dev, int batch, char *why, size_t cap) {
    ls_err e = {0};
    memset(host->out, 0xAB, (size_t)batch * host->out_bytes);
    memset(dev->out, 0xCD, (size_t)batch * dev->out_bytes);
    if (ort_binding_run(host->b, batch, &e) != 0 || ort_binding_run(dev->b, batch, &e) != 0) {
        snprintf(why, cap, "batch %d: %s", batch, e.msg);
        return -1;
    }
    const uint8_t *a = host->out, *d = dev->out;
    for (size_t i = 0; i < (size_t)batch * host->out_bytes; i++)
        if (a[i] != d[i]) {
            snprintf(why, cap, "batch %d: output byte %zu (item %zu) is %u on the host path, %u through the device",
                     batch, i, i / host->out_bytes, a[i], d[i]);
            return -1;
        }
    return 0;
}

/* Host path and device path of one model agree at every batch size, in a shuffled order (each
 * size has its own view set and IoBinding, so a set bound to the wrong addresses shows). */
static void check_model_agrees(const char *name, int uint8_io, int max_batch) {
    rig host, dev;
    ls_err e = {0};
    int ok_host = rig_open(&host, name, uint8_io, max_batch, NULL, &e) == 0;
    if (!ok_host) fprintf(stderr, "  host rig: %s\n", e.msg);
    int ok_dev = ok_host && rig_open(&dev, name, uint8_io, max_batch, device_mem, &e) == 0;
    if (ok_host && !ok_dev) fprintf(stderr, "  device rig: %s\n", e.msg);
    char why[1024] = "";
    int fail = !ok_host || !ok_dev;
    if (!fail && (ort_binding_on_device(host.b) || !ort_binding_on_device(dev.b))) {
        snprintf(why, sizeof why, "device path not taken: host %d, device %d ('%s')", ort_binding_on_device(host.b),
                 ort_binding_on_device(dev.b), ort_binding_device_note(dev.b));
        fail = 1;
    }
    static const int order[] = {3, 1, 4, 2, 4, 1};
    size_t expect = 0, item_bytes = 0;
    if (!fail) {
        ort_role role = ort_model_role(dev.m);
        for (int j = 0; j < ORT_ROLE_SPECS[role].n_in; j++) item_bytes += ort_role_input_bytes(role, j);
        item_bytes += dev.out_bytes;
    }
    host_device_bytes = 0;
    for (size_t k = 0; !fail && k < sizeof order / sizeof *order; k++) {
        fail = run_both(&host, &dev, order[k], why, sizeof why) != 0;
        /* A fixed-batch model runs whole chunks: the last one is staged and padded. */
        int chunk = ort_model_batch(dev.m), items = chunk ? (order[k] + chunk - 1) / chunk * chunk : order[k];
        expect += (size_t)items * item_bytes;
    }
    if (!fail && host_device_bytes != expect) {
        snprintf(why, sizeof why, "%zu bytes copied to and from the device, expected %zu", host_device_bytes, expect);
        fail = 1;
    }
    /* The device copies are counted in the model's device memory while the binding lives. */
    size_t held = 0, host_held = 0, released = 1;
    ort_model_stats st = {0};
    if (ok_dev) {
        ort_model_stats_get(dev.m, &st);
        held = ort_model_device_bytes(dev.m), host_held = ort_model_device_bytes(host.m);
        ort_binding_destroy(dev.b);
        dev.b = NULL;
        released = ort_model_device_bytes(dev.m);
        rig_close(&dev);
    }
    if (ok_host) rig_close(&host);
    CHECK(ok_host && ok_dev, "%s: both rigs open", name);
    CHECK(!fail, "%s: %s", name, why);
    CHECK(held == (size_t)max_batch * item_bytes && host_held == 0 && released == 0,
          "%s: device bytes %zu while bound (expected %zu), %zu after, %zu for the host model", name, held,
          (size_t)max_batch * item_bytes, released, host_held);
    CHECK(st.failures == 0 && st.runs > 0, "%s: %llu runs, %llu failures", name, (unsigned long long)st.runs,
          (unsigned long long)st.failures);
}

TEST(encoder_through_device_tensors_equals_the_host_path) { check_model_agrees("demo_encoder.onnx", 0, 4); }

TEST(fixed_batch_model_runs_whole_chunks_and_stages_the_last) {
    /* demo_encoder_b2 takes exactly 2 items: batch 3 is a full chunk then a staged, padded one. */
    check_model_agrees("demo_encoder_b2.onnx", 0, 4);
}

TEST(float_unet_through_device_tensors_equals_the_host_path) { check_model_agrees("unet328.onnx", 0, 4); }

TEST(uint8_unet_through_device_tensors_equals_the_host_path) { check_model_agrees("unet328.onnx", 1, 4); }

/* The resident run (bench_gpu's "model alone") runs a view set on what its device tensors already
 * hold: no copy either way, not counted as a run (its time is), and the next normal run is as
 * before. */
TEST(resident_runs_copy_nothing_and_leave_the_next_run_as_it_was) {
    rig dev;
    ls_err e = {0};
    CHECK(rig_open(&dev, "demo_encoder.onnx", 0, 3, device_mem, &e) == 0, "%s", e.msg);
    size_t bytes = 3 * dev.out_bytes;
    uint8_t *first = malloc(bytes), *zero = calloc(1, bytes);
    ort_model_stats before, after;
    int ok = first && zero && ort_binding_run(dev.b, 3, &e) == 0;
    if (ok) memcpy(first, dev.out, bytes), memset(dev.out, 0, bytes);
    ort_model_stats_get(dev.m, &before);
    host_device_bytes = 0;
    ok = ok && ort_binding_run_resident(dev.b, 3, &e) == 0 && ort_binding_run_resident(dev.b, 1, &e) == 0;
    size_t resident_copied = host_device_bytes;
    int untouched = ok && !memcmp(dev.out, zero, bytes);
    ort_model_stats_get(dev.m, &after);
    ok = ok && ort_binding_run(dev.b, 3, &e) == 0;
    int same = ok && !memcmp(first, dev.out, bytes);
    free(first), free(zero);
    rig_close(&dev);
    CHECK(ok, "runs: %s", e.msg);
    CHECK(resident_copied == 0 && untouched, "resident runs copied %zu bytes", resident_copied);
    CHECK(after.runs == before.runs && after.items == before.items && after.run_ns > before.run_ns,
          "runs %llu -> %llu, run time %llu -> %llu ns", (unsigned long long)before.runs,
          (unsigned long long)after.runs, (unsigned long long)before.run_ns, (unsigned long long)after.run_ns);
    CHECK(same, "batch 3 after resident runs equals the first run");
}

/* ---- CUDA graph captures exclude all other GPU work (ort_runtime_gpu_lock) ------------------ */

/* Copies that take a while and record how many were in flight at once; while `meet` is set, a copy
 * waits (up to 2 s) for a copy of the other thread to be in flight too. */
static atomic_int copies_in_flight, most_in_flight, meet, met;

static void sleep_us(long us) { nanosleep(&(struct timespec){us / 1000000, us % 1000000 * 1000}, NULL); }

static OrtStatus *slow_copy(const OrtApi *api, const OrtValue *const *src, OrtValue *const *dst, size_t n) {
    int now = atomic_fetch_add(&copies_in_flight, 1) + 1;
    int seen = atomic_load(&most_in_flight);
    while (now > seen && !atomic_compare_exchange_weak(&most_in_flight, &seen, now)) {}
    if (atomic_load(&meet))
        for (int i = 0; i < 20000 && !atomic_load(&met); i++) {
            if (atomic_load(&copies_in_flight) >= 2) atomic_store(&met, 1);
            else sleep_us(100);
        }
    sleep_us(1500);
    OrtStatus *st = host_device_copy(api, src, dst, n);
    atomic_fetch_sub(&copies_in_flight, 1);
    return st;
}

/* One thread running a rig: runs[p] runs of batch 1 in phase p, all threads starting each phase
 * together (a barrier of the two runners and the test, which looks between phases). */
enum { PHASES = 2 };
typedef struct {
    rig *r;
    int runs[PHASES];
    pthread_barrier_t *phase;
    int failed;
} runner_job;

static void *run_phases(void *arg) {
    runner_job *j = arg;
    ls_err e = {0};
    for (int p = 0; p < PHASES; p++) {
        pthread_barrier_wait(j->phase); /* start */
        for (int i = 0; i < j->runs[p]; i++) j->failed |= ort_binding_run(j->r->b, 1, &e) != 0;
        pthread_barrier_wait(j->phase); /* end */
    }
    return NULL;
}

typedef struct {
    int most[PHASES], met[PHASES];
} phase_seen;

/* Runs job a and job b on threads of their own, phase by phase; `meet_from`: the first phase in
 * which copies wait for each other. */
static int run_phased(runner_job *a, runner_job *b, int meet_from, phase_seen *seen) {
    pthread_barrier_t phase;
    pthread_barrier_init(&phase, NULL, 3);
    a->phase = b->phase = &phase;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_phases, a);
    pthread_create(&tb, NULL, run_phases, b);
    for (int p = 0; p < PHASES; p++) {
        atomic_store(&most_in_flight, 0), atomic_store(&met, 0), atomic_store(&meet, p >= meet_from);
        pthread_barrier_wait(&phase);
        pthread_barrier_wait(&phase);
        seen->most[p] = atomic_load(&most_in_flight), seen->met[p] = atomic_load(&met);
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&phase);
    return a->failed || b->failed ? -1 : 0;
}

/* Model a replays CUDA graphs, model b does not (like the UNet and the encoder). While a's view
 * set is in its first runs on a thread (when ORT's provider may capture), nothing else touches the
 * device: no copy of b overlaps a's. Later runs on that thread hold the lock shared, so b's copies
 * overlap them. On another thread the set is cold again (ORT keeps graphs per thread). */
TEST(graph_capture_runs_exclude_other_gpu_work_until_warm_on_their_thread) {
    rig a, b;
    ls_err e = {0};
    CHECK(rig_open(&a, "demo_encoder.onnx", 0, 2, device_mem, &e) == 0, "rig a: %s", e.msg);
    if (rig_open(&b, "demo_encoder.onnx", 0, 2, device_mem, &e) != 0) {
        rig_close(&a);
        CHECK(0, "rig b: %s", e.msg);
    }
    a.m->ep.cuda_graph = 1; /* what ort_model_load keeps for a UNet on CUDA with graphs */
    a.m->copy_tensors = b.m->copy_tensors = slow_copy;
    /* One pair of threads: a's first runs may capture, then it is warm on its thread. */
    runner_job ja = {&a, {ORT_GRAPH_WARMUP_RUNS, 3}, NULL, 0}, jb = {&b, {12, 3}, NULL, 0};
    phase_seen first = {0};
    int rc1 = run_phased(&ja, &jb, 1, &first);
    /* New threads: a's set is cold on its new thread, so its first runs are alone again. */
    runner_job ja2 = {&a, {ORT_GRAPH_WARMUP_RUNS, 0}, NULL, 0}, jb2 = {&b, {12, 0}, NULL, 0};
    phase_seen moved = {0};
    int rc2 = run_phased(&ja2, &jb2, PHASES, &moved);
    rig_close(&a);
    rig_close(&b);
    CHECK(rc1 == 0 && rc2 == 0, "runs failed");
    CHECK(first.most[0] == 1, "%d copies in flight at once while a graph could be captured", first.most[0]);
    CHECK(first.met[1], "no two copies in flight at once after the capture runs (the lock stayed exclusive)");
    CHECK(moved.most[0] == 1, "on a new thread: %d copies in flight at once during its first runs", moved.most[0]);
}

/* With CUDA graphs a binding needs device tensors (each batch size its own fixed addresses):
 * without device memory, or when they cannot be made, creating it fails and says why. Without
 * graphs the binding falls back to host tensors and keeps the reason. */
static OrtStatus *failing_copy(const OrtApi *api, const OrtValue *const *src, OrtValue *const *dst, size_t n) {
    (void)src, (void)dst, (void)n;
    return api->CreateStatus(ORT_FAIL, "no data transfer (test)");
}

TEST(graphs_without_device_tensors_refuse_the_binding_others_fall_back) {
    rig r;
    ls_err e = {0};
    CHECK(rig_open(&r, "demo_encoder.onnx", 0, 2, NULL, &e) == 0, "rig: %s", e.msg);
    static float out[2 * ORT_ENC_FEAT_ELEMS];
    r.m->ep.cuda_graph = 1;
    snprintf(r.m->device_note, sizeof r.m->device_note, "the CUDA provider reports no device memory");
    ort_binding *no_memory = ort_binding_create(r.m, 2, r.in, out, &e);
    ls_err e1 = e;
    r.m->device_note[0] = 0;
    host_device_use(r.m, device_mem);
    r.m->copy_tensors = failing_copy;
    ort_binding *no_copy = ort_binding_create(r.m, 2, r.in, out, &e);
    ls_err e2 = e;
    r.m->ep.cuda_graph = 0;
    ort_binding *fallback = ort_binding_create(r.m, 2, r.in, out, &e);
    int runs = fallback && ort_binding_run(fallback, 2, &e) == 0;
    int on_device = fallback ? ort_binding_on_device(fallback) : -1;
    char note[sizeof e.msg];
    snprintf(note, sizeof note, "%s", fallback ? ort_binding_device_note(fallback) : "");
    ort_binding_destroy(no_memory), ort_binding_destroy(no_copy), ort_binding_destroy(fallback);
    rig_close(&r);
    CHECK(!no_memory && e1.code == LS_EMODEL && strstr(e1.msg, "CUDA graphs need device tensors") &&
              strstr(e1.msg, "no device memory"), "no device memory: %s", e1.msg);
    CHECK(!no_copy && strstr(e2.msg, "CUDA graphs need device tensors") && strstr(e2.msg, "no data transfer (test)"),
          "copies failing: %s", e2.msg);
    CHECK(fallback && runs && on_device == 0 && strstr(note, "no data transfer (test)"),
          "without graphs: binding %p, runs %d, on device %d, note '%s'", (void *)fallback, runs, on_device, note);
}

int main(void) {
    ls_err e = {0};
    rt = ort_runtime_create(NULL, &e);
    if (!rt) {
        fprintf(stderr, "runtime: %s\n", e.msg);
        return 1;
    }
    if (!(device_mem = host_device_memory(rt))) return 1;
    RUN(encoder_through_device_tensors_equals_the_host_path);
    RUN(fixed_batch_model_runs_whole_chunks_and_stages_the_last);
    RUN(float_unet_through_device_tensors_equals_the_host_path);
    RUN(uint8_unet_through_device_tensors_equals_the_host_path);
    RUN(resident_runs_copy_nothing_and_leave_the_next_run_as_it_was);
    RUN(graph_capture_runs_exclude_other_gpu_work_until_warm_on_their_thread);
    RUN(graphs_without_device_tensors_refuse_the_binding_others_fall_back);
    ort_runtime_api(rt)->ReleaseMemoryInfo(device_mem);
    ort_runtime_destroy(rt);
    return check_summary();
}
