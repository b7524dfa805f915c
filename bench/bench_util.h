/* bench_util.h - timing, statistics, a counting allocator and figure recording for bench_stages.
 *
 * Figures are kept in a cJSON array and written as JSON at the end; bench/report.py prints the
 * table from that file. The allocator (malloc & co. defined in the executable, forwarding to
 * glibc's __libc_* entry points, as tests/test_jpeg_splice_alloc.c does) counts calls and bytes
 * while bench_alloc_on is set; link with -rdynamic so that dlopen'ed libraries (ONNX Runtime)
 * call it too. Header-only: included by one program. */
#ifndef LS_BENCH_UTIL_H
#define LS_BENCH_UTIL_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_time.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int bench_alloc_on;
static atomic_long bench_alloc_calls, bench_alloc_bytes;

static inline void bench_count(size_t n) {
    if (atomic_load_explicit(&bench_alloc_on, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&bench_alloc_calls, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&bench_alloc_bytes, (long)n, memory_order_relaxed);
    }
}
void *malloc(size_t n) { bench_count(n); return __libc_malloc(n); }
void *calloc(size_t n, size_t s) { bench_count(n * s); return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { bench_count(n); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *aligned_alloc(size_t a, size_t n) { bench_count(n); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { bench_count(n); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    bench_count(n);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12; /* ENOMEM */
}

static void bench_alloc_start(void) {
    atomic_store(&bench_alloc_calls, 0);
    atomic_store(&bench_alloc_bytes, 0);
    atomic_store(&bench_alloc_on, 1);
}
static void bench_alloc_stop(long *calls, long *bytes) {
    atomic_store(&bench_alloc_on, 0);
    *calls = atomic_load(&bench_alloc_calls);
    *bytes = atomic_load(&bench_alloc_bytes);
}

static cJSON *bench_figures; /* the array written at the end */

/* Records one figure. group: "stage", "unet", "e2e", "ratio", "memory", "alloc", "load".
 * name: a stable key; label: what the table shows; variant: "naive", "optimised" or "". */
static bench_stat bench_add(const char *group, const char *name, const char *label, const char *variant,
                            const char *res, const char *unit, bench_stat s) {
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "group", group);
    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddStringToObject(f, "label", label);
    cJSON_AddStringToObject(f, "variant", variant);
    cJSON_AddStringToObject(f, "resolution", res);
    cJSON_AddStringToObject(f, "unit", unit);
    cJSON_AddNumberToObject(f, "median", s.med);
    cJSON_AddNumberToObject(f, "min", s.min);
    cJSON_AddNumberToObject(f, "max", s.max);
    cJSON_AddNumberToObject(f, "runs", s.n);
    cJSON_AddItemToArray(bench_figures, f);
    fprintf(stderr, "  %-44s %-10s %10.4f %s (min %.4f, max %.4f, n %d)\n", label, res, s.med, unit,
            s.min, s.max, s.n);
    return s;
}

/* A single value (ratios of medians, byte counts). */
static void bench_add_value(const char *group, const char *name, const char *label, const char *res,
                            const char *unit, double v) {
    bench_stat s = {v, v, v, 1};
    bench_add(group, name, label, "", res, unit, s);
}

#endif
