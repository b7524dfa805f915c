/* cpu_plan.h - where lipsyncd's model threads run under onnx.thread_affinity: auto.
 *
 * The plan holds the CPUs to use (the configured list, else every CPU sched_getaffinity allows)
 * and hands them out in order: render worker i gets the i-th CPU (srv_cpu_plan_worker); then, as
 * they start, each stream scheduler thread takes the next CPU and each CPU session's intra-op
 * pool the next intra_op_threads - 1 (srv_cpu_plan_take). Ranges do not overlap while CPUs last;
 * after the last one the plan wraps around to the first, and from then on threads share CPUs
 * (take says so; the default worker_count, one per CPU, already uses them all). With affinity
 * none the plan is off: every function answers "not pinned". take is thread-safe (atomic cursor);
 * nothing allocates. */
#ifndef LS_SRV_CPU_PLAN_H
#define LS_SRV_CPU_PLAN_H

#include <stdatomic.h>

#include "common/err.h"
#include "infer/ort_affinity.h"
#include "server/config.h"

typedef struct srv_cpu_plan {
    int cpus[ORT_AFF_MAX_CPUS];
    int n;              /* 0: off */
    int workers;        /* render workers: the first `workers` positions */
    _Atomic long long next; /* next position take hands out, counted from 0, never reduced */
} srv_cpu_plan;

/* From cfg's onnx.thread_affinity and server.worker_count. A listed CPU this process may not run
 * on fails (LS_EINVAL, "onnx.thread_affinity: CPU 7 is not available ..."). */
int srv_cpu_plan_init(srv_cpu_plan *p, const srv_config *cfg, ls_err *err);

/* The CPU of render worker `index`, or -1 when the plan is off. */
int srv_cpu_plan_worker(const srv_cpu_plan *p, int index);

/* The next `count` CPUs into out[count]: 0, or 1 when they wrapped (shared with earlier threads),
 * or -1 when the plan is off (out untouched). */
int srv_cpu_plan_take(srv_cpu_plan *p, int count, int *out);

/* "auto over 16 CPUs (0-15)" or "none", for the start-up log. */
void srv_cpu_plan_describe(const srv_cpu_plan *p, char *buf, size_t cap);

#endif
