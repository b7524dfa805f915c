/* test_ort_tune.c - the batch-size sweep behind `lipsync tune` (ort_tune.h), on the demo UNet
 * ($LS_BUILD_DIR/models: tiny, so a sweep takes milliseconds); the full UNet stays out of CI. */
#include "check.h"
#include "common/err.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"
#include "infer/ort_tune.h"

#include <string.h>
#include <time.h>

static ort_runtime *rt;

TEST(sweep_reports_every_size_in_order_with_consistent_figures) {
    ls_err e = {0};
    ort_model_opts o = {.intra_threads = 1};
    ort_model *m = ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, &e);
    CHECK(m, "load: %s", e.msg);
    const int batches[3] = {4, 1, 2};
    ort_tune_point p[3];
    memset(p, 0, sizeof p);
    int rc = ort_tune_batches(m, batches, 3, 0.0, p, &e);
    ort_model_destroy(m);
    CHECK(rc == 0, "sweep: %s", e.msg);
    for (int i = 0; i < 3; i++) {
        CHECK(p[i].batch == batches[i], "point %d is batch %d", i, p[i].batch);
        CHECK(p[i].runs >= ORT_TUNE_MIN_RUNS && p[i].runs <= ORT_TUNE_MAX_RUNS, "runs %d", p[i].runs);
        CHECK(p[i].ms_run > 0 && p[i].fps > 0, "batch %d: %.3f ms, %.1f fps", p[i].batch, p[i].ms_run, p[i].fps);
        CHECK_NEAR(p[i].fps, 1e3 * p[i].batch / p[i].ms_run, 1e-6 * p[i].fps, "fps = batch / median run");
        CHECK(p[i].fps_min <= p[i].fps && p[i].fps <= p[i].fps_max, "min %.1f <= %.1f <= max %.1f", p[i].fps_min,
              p[i].fps, p[i].fps_max);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(sweep_runs_for_the_time_asked) {
    ls_err e = {0};
    ort_model_opts o = {.intra_threads = 1};
    ort_model *m = ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &o, &e);
    CHECK(m, "load: %s", e.msg);
    const int one = 1;
    ort_tune_point p;
    double t0 = now_s();
    int rc = ort_tune_batches(m, &one, 1, 0.2, &p, &e);
    double took = now_s() - t0;
    ort_model_destroy(m);
    CHECK(rc == 0, "sweep: %s", e.msg);
    /* Runs until 0.2 s have passed unless the cap comes first (a demo run takes under 20 ms, so
     * 0.2 s holds more than the minimum). Wall time, not runs x median: a loaded machine stretches
     * a few runs far past the median. */
    CHECK(p.runs == ORT_TUNE_MAX_RUNS || (p.runs > ORT_TUNE_MIN_RUNS && took >= 0.2),
          "%d runs of %.3f ms (median) in %.3f s", p.runs, p.ms_run, took);
}

TEST(sweep_refuses_bad_arguments) {
    ls_err e = {0};
    ort_model *m = ort_model_load(rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, NULL, &e);
    CHECK(m, "load: %s", e.msg);
    ort_tune_point p[2];
    const int zero = 0, two[2] = {1, 2};
    int r1 = ort_tune_batches(m, &zero, 1, 0, p, &e), c1 = e.code;
    int r2 = ort_tune_batches(m, two, 0, 0, p, &e), c2 = e.code;
    int r3 = ort_tune_batches(m, two, 2, -1, p, &e), c3 = e.code;
    ort_model_destroy(m);
    CHECK(r1 == -1 && c1 == LS_EINVAL, "batch 0");
    CHECK(r2 == -1 && c2 == LS_EINVAL, "no sizes");
    CHECK(r3 == -1 && c3 == LS_EINVAL, "negative seconds");
}

TEST(best_is_the_fastest_and_the_smaller_batch_on_a_tie) {
    ort_tune_point p[4] = {{.batch = 1, .fps = 10}, {.batch = 8, .fps = 30}, {.batch = 16, .fps = 30},
                           {.batch = 32, .fps = 29}};
    CHECK(ort_tune_best(p, 4) == 1, "batch 8 (tie with 16), got %d", ort_tune_best(p, 4));
    p[2].fps = 31;
    CHECK(ort_tune_best(p, 4) == 2, "batch 16 once faster");
    CHECK(ort_tune_best(p, 1) == 0 && ort_tune_best(p, 0) == -1, "one point; none");
}

TEST(batch_lists_parse_strictly) {
    int b[8];
    ls_err e = {0};
    CHECK(ort_tune_parse_batches("1,2,4,8,16,25,32", b, 8, 32, &e) == 7 && b[0] == 1 && b[6] == 32, "the default");
    CHECK(ort_tune_parse_batches("8", b, 8, 32, &e) == 1 && b[0] == 8, "one size");
    static const char *const bad[] = {"", "0", "33", "1,,2", "1,2,", "1,x", "2,2", "1;2", "4a"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(ort_tune_parse_batches(bad[i], b, 8, 32, &e) == -1 && e.code == LS_EINVAL, "'%s' refused", bad[i]);
    CHECK(ort_tune_parse_batches("1,2,3", b, 2, 32, &e) == -1 && strstr(e.msg, "more than 2"), "too many: %s", e.msg);
}

int main(void) {
    ls_err e = {0};
    rt = ort_runtime_create(NULL, &e);
    if (!rt) {
        fprintf(stderr, "ONNX Runtime: %s\n", e.msg);
        return 1;
    }
    RUN(sweep_reports_every_size_in_order_with_consistent_figures);
    RUN(sweep_runs_for_the_time_asked);
    RUN(sweep_refuses_bad_arguments);
    RUN(best_is_the_fastest_and_the_smaller_batch_on_a_tie);
    RUN(batch_lists_parse_strictly);
    ort_runtime_destroy(rt);
    return check_summary();
}
