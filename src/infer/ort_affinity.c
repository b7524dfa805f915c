/* ort_affinity.c - CPU sets for model threads: the allowed set, ranges of it, ORT's affinity
 * string, and pinning the calling thread (contracts in ort_affinity.h). */
#include "infer/ort_affinity.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

int ort_aff_allowed(int *cpus, int cap, ls_err *err) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return ls_fail(err, LS_EIO, "sched_getaffinity: %s", strerror(errno));
    int n = 0;
    for (int c = 0; c < ORT_AFF_MAX_CPUS && c < CPU_SETSIZE && n < cap; c++)
        if (CPU_ISSET(c, &set)) cpus[n++] = c;
    return n;
}

int ort_aff_take(const int *cpus, int n, int first, int count, int *out) {
    if (!cpus || n < 1 || first < 0 || count < 0) return -1;
    for (int j = 0; j < count; j++) out[j] = cpus[(int)(((long)first + j) % n)];
    return (long)first + count > n;
}

int ort_aff_string(const int *cpus, int n, char *buf, size_t cap) {
    if (!buf || cap == 0) return -1;
    buf[0] = 0;
    size_t used = 0;
    for (int j = 0; j < n; j++) {
        if (cpus[j] < 0 || cpus[j] >= ORT_AFF_MAX_CPUS) return -1;
        int w = snprintf(buf + used, cap - used, "%s%d", j ? ";" : "", cpus[j] + 1); /* ORT counts from 1 */
        if (w < 0 || (size_t)w >= cap - used) {
            buf[0] = 0;
            return -1;
        }
        used += (size_t)w;
    }
    return 0;
}

int ort_aff_pin_self(const int *cpus, int n, ls_err *err) {
    if (!cpus || n < 1) return ls_fail(err, LS_EINVAL, "no CPU to pin a thread to");
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int j = 0; j < n; j++) {
        if (cpus[j] < 0 || cpus[j] >= ORT_AFF_MAX_CPUS || cpus[j] >= CPU_SETSIZE)
            return ls_fail(err, LS_EINVAL, "CPU %d is out of range 0..%d", cpus[j], ORT_AFF_MAX_CPUS - 1);
        CPU_SET(cpus[j], &set);
    }
    int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (e) return ls_fail(err, LS_EINVAL, "cannot pin a thread to CPU %d%s: %s", cpus[0], n > 1 ? " and others" : "",
                          strerror(e));
    return 0;
}

int ort_aff_thread_attr(pthread_attr_t *attr, int cpu, ls_err *err) {
    if (cpu < 0 || cpu >= ORT_AFF_MAX_CPUS || cpu >= CPU_SETSIZE)
        return ls_fail(err, LS_EINVAL, "CPU %d is out of range 0..%d", cpu, ORT_AFF_MAX_CPUS - 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int e = pthread_attr_setaffinity_np(attr, sizeof set, &set);
    return e ? ls_fail(err, LS_EINVAL, "cannot pin a new thread to CPU %d: %s", cpu, strerror(e)) : 0;
}
