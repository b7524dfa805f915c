/* bench_time.h - the clock and the median / min / max every benchmark here reports. Header-only
 * (static functions), included by the bench programs. */
#ifndef LS_BENCH_TIME_H
#define LS_BENCH_TIME_H

#include <stdlib.h>
#include <time.h>

static inline double bench_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + 1e-6 * (double)t.tv_nsec;
}

static inline int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double med, min, max; int n; } bench_stat;

/* Median, min and max of v[0..n) (sorts v). */
static inline bench_stat bench_stats(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    bench_stat s = {n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0, n ? v[0] : 0,
                    n ? v[n - 1] : 0, n};
    return s;
}

#endif
