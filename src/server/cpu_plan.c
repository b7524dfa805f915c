/* cpu_plan.c - CPUs for lipsyncd's model threads (contract in cpu_plan.h). */
#include "server/cpu_plan.h"

#include <stdio.h>
#include <string.h>

int srv_cpu_plan_init(srv_cpu_plan *p, const srv_config *cfg, ls_err *err) {
    memset(p, 0, sizeof *p);
    atomic_init(&p->next, 0);
    if (cfg->thread_affinity == SRV_AFFINITY_NONE) return 0;
    int allowed[ORT_AFF_MAX_CPUS];
    int n_allowed = ort_aff_allowed(allowed, ORT_AFF_MAX_CPUS, err);
    if (n_allowed < 1) return ls_wrap(err, "onnx.thread_affinity");
    if (cfg->n_affinity_cpus == 0) {
        memcpy(p->cpus, allowed, (size_t)n_allowed * sizeof *allowed);
        p->n = n_allowed;
    } else {
        for (int i = 0; i < cfg->n_affinity_cpus; i++) {
            int ok = 0;
            for (int j = 0; j < n_allowed && !ok; j++) ok = allowed[j] == cfg->affinity_cpus[i];
            if (!ok)
                return ls_fail(err, LS_EINVAL, "onnx.thread_affinity: CPU %d is not available to lipsyncd (it may "
                               "use %d CPUs, from %d to %d)", cfg->affinity_cpus[i], n_allowed, allowed[0],
                               allowed[n_allowed - 1]);
            p->cpus[i] = cfg->affinity_cpus[i];
        }
        p->n = cfg->n_affinity_cpus;
    }
    p->workers = cfg->worker_count;
    atomic_store(&p->next, p->workers);
    return 0;
}

int srv_cpu_plan_worker(const srv_cpu_plan *p, int index) {
    return p->n > 0 && index >= 0 ? p->cpus[index % p->n] : -1;
}

int srv_cpu_plan_take(srv_cpu_plan *p, int count, int *out) {
    if (p->n == 0 || count < 0) return -1;
    long long first = atomic_fetch_add(&p->next, count); /* positions only grow: 64 bits never wrap */
    ort_aff_take(p->cpus, p->n, (int)(first % p->n), count, out);
    return first + count > p->n; /* past the set: this range or an earlier one reached around */
}

void srv_cpu_plan_describe(const srv_cpu_plan *p, char *buf, size_t cap) {
    if (p->n == 0) snprintf(buf, cap, "none");
    else snprintf(buf, cap, "auto over %d CPUs (%d .. %d)", p->n, p->cpus[0], p->cpus[p->n - 1]);
}
