/* ort_affinity.h - which logical CPUs the threads that run models are pinned to.
 *
 * Two kinds of threads compute: the thread that calls Run (ours: a render worker, a stream
 * scheduler thread, the CLI's main thread) and the intra-op pool of each ORT session
 * (intra_threads - 1 threads that ORT starts; ORT pins them from the session config entry
 * "session.intra_op_thread_affinities", one entry per pool thread, the calling thread excluded,
 * logical processors numbered from 1). CPUs here are numbered as the kernel numbers them (from 0,
 * as sched_getaffinity reports them); ort_aff_string() does the +1.
 *
 * A plan hands out CPUs from a set in order, a range per user: ranges do not overlap while the
 * set lasts, then it wraps around and later ranges share CPUs with earlier ones (ort_aff_take
 * says so). Pure functions except ort_aff_allowed (asks the kernel) and the two that pin; nothing
 * allocates. */
#ifndef LS_ORT_AFFINITY_H
#define LS_ORT_AFFINITY_H

#include "common/err.h"

#include <pthread.h>
#include <stddef.h>

#define ORT_AFF_MAX_CPUS 1024 /* CPU numbers 0 .. 1023 (glibc's CPU_SETSIZE) */

/* The CPUs this process may run on (sched_getaffinity), ascending, into cpus[cap]. Returns how
 * many, or -1 with err (LS_EIO) when the kernel does not say. */
int ort_aff_allowed(int *cpus, int cap, ls_err *err);

/* Positions first .. first+count-1 of the set cpus[n], wrapping around: out[j] = cpus[(first+j)
 * % n]. Returns 1 when the range wrapped (first + count > n: some CPU of it is also in an
 * earlier range), 0 when it did not, -1 for bad arguments (n < 1, first < 0, count < 0). */
int ort_aff_take(const int *cpus, int n, int first, int count, int *out);

/* ORT's affinity string for a pool whose thread j runs on cpus[j]: "3;4;5" for {2,3,4}; "" for
 * n == 0. Returns 0, or -1 when a CPU is out of 0..ORT_AFF_MAX_CPUS-1 or buf is too small. */
int ort_aff_string(const int *cpus, int n, char *buf, size_t cap);

/* Pins the calling thread to the CPUs cpus[n] (pthread_setaffinity_np): one CPU to pin it, the
 * allowed set to unpin it again. Threads it starts later inherit the set, ORT's pool threads
 * included unless their session has pool CPUs. Errors: LS_EINVAL (a CPU out of range, or none of
 * them allowed to this process), naming the first CPU. */
int ort_aff_pin_self(const int *cpus, int n, ls_err *err);

/* Sets attr so that a thread created with it starts pinned to `cpu` (pthread_attr_setaffinity_np).
 * Errors: LS_EINVAL (out of range), naming the CPU. */
int ort_aff_thread_attr(pthread_attr_t *attr, int cpu, ls_err *err);

#endif
