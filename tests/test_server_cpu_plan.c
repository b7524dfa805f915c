/* test_server_cpu_plan.c - where lipsyncd's model threads go under onnx.thread_affinity
 * (src/server/cpu_plan.h): workers first, then stream threads and session pools in order,
 * wrapping once the CPUs run out; listed CPUs must be available; none is off. */
#include <string.h>

#include "check.h"
#include "infer/ort_affinity.h"
#include "server/cpu_plan.h"

static srv_cpu_plan plan; /* 4 KiB: off the stack */

/* A config pinning over the CPUs in list[n] with `workers` render workers. */
static void cfg_with(srv_config *c, const int *list, int n, int workers) {
    srv_config_defaults(c);
    c->thread_affinity = SRV_AFFINITY_AUTO;
    c->worker_count = workers;
    memcpy(c->affinity_cpus, list, (size_t)n * sizeof *list);
    c->n_affinity_cpus = n;
}

TEST(none_is_off) {
    srv_config c;
    ls_err e = {0};
    srv_config_defaults(&c);
    CHECK(srv_cpu_plan_init(&plan, &c, &e) == 0, "%s", e.msg);
    int out[2] = {-7, -7};
    CHECK(srv_cpu_plan_worker(&plan, 0) == -1 && srv_cpu_plan_take(&plan, 2, out) == -1 && out[0] == -7, "off");
}

TEST(workers_first_then_pools_in_order_then_wrapping) {
    int allowed[ORT_AFF_MAX_CPUS];
    ls_err e = {0};
    int n = ort_aff_allowed(allowed, ORT_AFF_MAX_CPUS, &e);
    CHECK(n >= 1, "%s", e.msg);
    srv_config c;
    cfg_with(&c, allowed, n, 1);
    CHECK(srv_cpu_plan_init(&plan, &c, &e) == 0, "%s", e.msg);
    CHECK(srv_cpu_plan_worker(&plan, 0) == allowed[0], "worker 0 on the first CPU");
    CHECK(srv_cpu_plan_worker(&plan, n) == allowed[0], "worker n wraps to the first CPU");
    int out[ORT_AFF_MAX_CPUS];
    int r1 = srv_cpu_plan_take(&plan, n - 1, out);
    CHECK(r1 == 0, "the other n-1 CPUs fit: %d", r1);
    for (int j = 0; j < n - 1; j++) CHECK(out[j] == allowed[j + 1], "pool thread %d on CPU %d", j, out[j]);
    CHECK(srv_cpu_plan_take(&plan, 1, out) == 1 && out[0] == allowed[0], "the next one wraps and says so");
    CHECK(srv_cpu_plan_take(&plan, 0, out) == 1, "and later takes keep saying so");
}

TEST(a_listed_cpu_is_used_in_list_order) {
    int allowed[ORT_AFF_MAX_CPUS];
    ls_err e = {0};
    int n = ort_aff_allowed(allowed, ORT_AFF_MAX_CPUS, &e);
    CHECK(n >= 1, "%s", e.msg);
    int list[2] = {allowed[n - 1], allowed[0]};
    srv_config c;
    cfg_with(&c, list, n > 1 ? 2 : 1, 2);
    CHECK(srv_cpu_plan_init(&plan, &c, &e) == 0, "%s", e.msg);
    CHECK(srv_cpu_plan_worker(&plan, 0) == list[0], "worker 0 on the first listed CPU");
    int out[2];
    CHECK(srv_cpu_plan_take(&plan, 1, out) == 1 && out[0] == list[0], "2 workers used the list: the pool wraps");
    char d[96];
    srv_cpu_plan_describe(&plan, d, sizeof d);
    CHECK(!strncmp(d, "auto over", 9), "describe: %s", d);
}

TEST(an_unavailable_cpu_is_refused_by_name) {
    int allowed[ORT_AFF_MAX_CPUS];
    ls_err e = {0};
    int n = ort_aff_allowed(allowed, ORT_AFF_MAX_CPUS, &e);
    CHECK(n >= 1 && allowed[n - 1] < ORT_AFF_MAX_CPUS - 1, "%s", e.msg);
    int list[1] = {ORT_AFF_MAX_CPUS - 1}; /* CPU 1023: not on this machine */
    srv_config c;
    cfg_with(&c, list, 1, 1);
    CHECK(srv_cpu_plan_init(&plan, &c, &e) == -1 && e.code == LS_EINVAL &&
              strstr(e.msg, "onnx.thread_affinity: CPU 1023 is not available"), "got: %s", e.msg);
}

int main(void) {
    RUN(none_is_off);
    RUN(workers_first_then_pools_in_order_then_wrapping);
    RUN(a_listed_cpu_is_used_in_list_order);
    RUN(an_unavailable_cpu_is_refused_by_name);
    return check_summary();
}
