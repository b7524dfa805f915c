/* test_ort_affinity.c - CPU ranges and ORT's affinity string (pure), pinning, and a CPU session
 * whose intra-op pool is pinned: it loads, runs, and its pool thread really sits on the CPU asked
 * for (read back from /proc/self/task/<tid>/status). Uses the demo UNet ($LS_BUILD_DIR/models). */
#include "check.h"
#include "common/err.h"
#include "infer/ort_affinity.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"

#include <dirent.h>
#include <string.h>

static ort_runtime *rt;

TEST(take_gives_consecutive_ranges_and_says_when_it_wraps) {
    const int cpus[4] = {0, 2, 5, 7};
    int out[6];
    CHECK(ort_aff_take(cpus, 4, 0, 2, out) == 0 && out[0] == 0 && out[1] == 2, "first range: %d %d", out[0], out[1]);
    CHECK(ort_aff_take(cpus, 4, 2, 2, out) == 0 && out[0] == 5 && out[1] == 7, "second range ends the set");
    CHECK(ort_aff_take(cpus, 4, 3, 3, out) == 1 && out[0] == 7 && out[1] == 0 && out[2] == 2,
          "third range wraps: %d %d %d", out[0], out[1], out[2]);
    CHECK(ort_aff_take(cpus, 4, 4, 1, out) == 1 && out[0] == 0, "a range past the end wraps");
    CHECK(ort_aff_take(cpus, 4, 1, 0, out) == 0, "an empty range");
    CHECK(ort_aff_take(cpus, 0, 0, 1, out) == -1 && ort_aff_take(cpus, 4, -1, 1, out) == -1, "bad arguments");
}

TEST(affinity_string_is_one_based_one_entry_per_pool_thread) {
    char buf[64];
    const int cpus[3] = {2, 3, 10};
    CHECK(ort_aff_string(cpus, 3, buf, sizeof buf) == 0 && !strcmp(buf, "3;4;11"), "got '%s'", buf);
    CHECK(ort_aff_string(cpus, 0, buf, sizeof buf) == 0 && !strcmp(buf, ""), "no pool thread: empty");
    const int zero = 0;
    CHECK(ort_aff_string(&zero, 1, buf, sizeof buf) == 0 && !strcmp(buf, "1"), "CPU 0 is ORT's 1: '%s'", buf);
    CHECK(ort_aff_string(cpus, 3, buf, 6) == -1 && buf[0] == 0, "too small a buffer fails, empty");
    const int bad[2] = {1, ORT_AFF_MAX_CPUS};
    CHECK(ort_aff_string(bad, 2, buf, sizeof buf) == -1, "CPU out of range");
}

/* The CPUs a thread may run on, from the Cpus_allowed_list of its status file ("3" or "0-1"). */
static void thread_cpus(const char *path, char *out, size_t cap) {
    char line[256];
    out[0] = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Cpus_allowed_list:", 18)) snprintf(out, cap, "%s", line + 18 + strspn(line + 18, " \t"));
    if (f) fclose(f);
    out[strcspn(out, "\n")] = 0;
}

/* Threads of this process allowed exactly the CPU set `want` (e.g. "1"). */
static int threads_on(const char *want) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    char cpus[256];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            char path[300];
            snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
            thread_cpus(path, cpus, sizeof cpus);
            n += !strcmp(cpus, want);
        }
    if (d) closedir(d);
    return n;
}

TEST(pinning_the_calling_thread_and_unpinning_it) {
    int cpus[ORT_AFF_MAX_CPUS];
    ls_err e = {0};
    int n = ort_aff_allowed(cpus, ORT_AFF_MAX_CPUS, &e);
    CHECK(n >= 1, "allowed CPUs: %s", e.msg);
    if (n < 2) { fprintf(stderr, "  skipped: one CPU, every thread is on it, pinned or not\n"); return; }
    CHECK(ort_aff_pin_self(&cpus[n - 1], 1, &e) == 0, "pin: %s", e.msg);
    char want[16], got[256];
    snprintf(want, sizeof want, "%d", cpus[n - 1]);
    thread_cpus("/proc/thread-self/status", got, sizeof got);
    CHECK(!strcmp(got, want), "pinned to '%s', want '%s'", got, want);
    CHECK(ort_aff_pin_self(cpus, n, &e) == 0, "unpin: %s", e.msg);
    const int bad = ORT_AFF_MAX_CPUS;
    CHECK(ort_aff_pin_self(&bad, 1, &e) == -1 && e.code == LS_EINVAL && strstr(e.msg, "1024"), "out of range: %s",
          e.msg);
}

TEST(session_with_a_pinned_pool_loads_runs_and_pins_its_thread) {
    int cpus[ORT_AFF_MAX_CPUS];
    ls_err e = {0};
    int n = ort_aff_allowed(cpus, ORT_AFF_MAX_CPUS, &e);
    CHECK(n >= 1, "allowed CPUs: %s", e.msg);
    if (n < 2) { fprintf(stderr, "  skipped: one CPU, every thread is on it, pinned or not\n"); return; }
    char want[16];
    snprintf(want, sizeof want, "%d", cpus[n - 1]);
    int before = threads_on(want);
    int pool = cpus[n - 1]; /* one pool thread (2 intra-op threads), on the last allowed CPU */
    ort_model_opts o = {.intra_threads = 2, .inter_threads = 1, .pool_cpus = &pool, .n_pool_cpus = 1};
    ort_model *m = ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, &e);
    CHECK(m, "load: %s", e.msg);
    int after = threads_on(want);
    float *img = calloc(2 * ORT_UNET_IMG_ELEMS, sizeof(float)), *aud = calloc(2 * ORT_UNET_AUDIO_ELEMS, sizeof(float));
    float *out = calloc(2 * ORT_UNET_OUT_ELEMS, sizeof(float));
    void *in[2] = {img, aud};
    ort_binding *b = ort_binding_create(m, 2, in, out, &e);
    int ran = b && ort_binding_run(b, 2, &e) == 0;
    ort_binding_destroy(b);
    ort_model_destroy(m);
    free(img), free(aud), free(out);
    CHECK(ran, "run: %s", e.msg);
    CHECK(after == before + 1, "one more thread allowed only CPU %s (before %d, after %d)", want, before, after);
}

TEST(pool_cpus_must_match_the_thread_count) {
    ls_err e = {0};
    int pool[2] = {0, 0};
    ort_model_opts o = {.intra_threads = 2, .pool_cpus = pool, .n_pool_cpus = 2};
    CHECK(!ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, &e) && e.code == LS_EINVAL &&
              strstr(e.msg, "threads - 1"), "2 CPUs for 2 threads: %s", e.msg);
    o = (ort_model_opts){.intra_threads = 0, .pool_cpus = pool, .n_pool_cpus = 0};
    CHECK(!ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, &e) && e.code == LS_EINVAL,
          "ORT's default thread count with pool CPUs: %s", e.msg);
}

int main(void) {
    ls_err e = {0};
    rt = ort_runtime_create(NULL, &e);
    if (!rt) {
        fprintf(stderr, "ONNX Runtime: %s\n", e.msg);
        return 1;
    }
    RUN(take_gives_consecutive_ranges_and_says_when_it_wraps);
    RUN(affinity_string_is_one_based_one_entry_per_pool_thread);
    RUN(pinning_the_calling_thread_and_unpinning_it);
    RUN(session_with_a_pinned_pool_loads_runs_and_pins_its_thread);
    RUN(pool_cpus_must_match_the_thread_count);
    ort_runtime_destroy(rt);
    return check_summary();
}
