/* ort_tune.c - batch-size sweep of a model (contract in ort_tune.h). */
#include "infer/ort_tune.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times runs of one batch size into p. */
static int measure(ort_binding *b, int batch, double seconds, ort_tune_point *p, ls_err *err) {
    double t[ORT_TUNE_MAX_RUNS];
    if (ort_binding_run(b, batch, err) != 0) return -1; /* warm-up */
    int runs = 0;
    double start = now_ms();
    while (runs < ORT_TUNE_MAX_RUNS && (runs < ORT_TUNE_MIN_RUNS || now_ms() - start < seconds * 1e3)) {
        double t0 = now_ms();
        if (ort_binding_run(b, batch, err) != 0) return -1;
        t[runs++] = now_ms() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    p->batch = batch;
    p->runs = runs;
    p->ms_run = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    p->fps = 1e3 * batch / p->ms_run;
    p->fps_min = 1e3 * batch / t[runs - 1];
    p->fps_max = 1e3 * batch / t[0];
    return 0;
}

int ort_tune_batches(ort_model *m, const int *batches, int n, double seconds, ort_tune_point *out, ls_err *err) {
    if (!m || !batches || !out || n < 1 || n > ORT_TUNE_MAX_SIZES || !(seconds >= 0))
        return ls_fail(err, LS_EINVAL, "tune: need a model, 1..%d batch sizes and seconds >= 0", ORT_TUNE_MAX_SIZES);
    int max = 0;
    for (int i = 0; i < n; i++) {
        if (batches[i] < 1 || batches[i] > 4096) return ls_fail(err, LS_EINVAL, "tune: batch %d out of 1..4096", batches[i]);
        if (batches[i] > max) max = batches[i];
    }
    ort_role role = ort_model_role(m);
    int n_in = ort_role_input_count(role);
    void *in[2] = {NULL, NULL}, *outbuf = malloc((size_t)max * ort_role_output_bytes(role));
    int rc = outbuf ? 0 : ls_fail(err, LS_ENOMEM, "tune: no memory for batch %d", max);
    for (int i = 0; i < n_in && rc == 0; i++) {
        size_t bytes = (size_t)max * ort_role_input_bytes(role, i);
        if (!(in[i] = malloc(bytes))) rc = ls_fail(err, LS_ENOMEM, "tune: no memory for batch %d", max);
        else if (ort_role_input_bytes(role, i) / ort_role_input_elems(role, i) == 1)
            for (size_t k = 0; k < bytes; k++) ((uint8_t *)in[i])[k] = (uint8_t)(k % 251);
        else
            for (size_t k = 0; k < bytes / sizeof(float); k++) ((float *)in[i])[k] = (float)(k % 251) / 251.0f;
    }
    ort_binding *b = rc == 0 ? ort_binding_create(m, max, in, outbuf, err) : NULL;
    if (!b) rc = -1;
    for (int i = 0; i < n && rc == 0; i++) rc = measure(b, batches[i], seconds, &out[i], err);
    ort_binding_destroy(b);
    free(in[0]), free(in[1]), free(outbuf);
    return rc;
}

int ort_tune_best(const ort_tune_point *p, int n) {
    int best = n > 0 ? 0 : -1;
    for (int i = 1; i < n; i++)
        if (p[i].fps > p[best].fps || (p[i].fps == p[best].fps && p[i].batch < p[best].batch)) best = i;
    return best;
}

int ort_tune_parse_batches(const char *s, int *batches, int cap, int max, ls_err *err) {
    int n = 0;
    const char *c = s;
    while (c && *c) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c || (*end && *end != ',') || v < 1 || v > max)
            return ls_fail(err, LS_EINVAL, "batch sizes must be a list like 1,2,4,8 of 1..%d, not '%s'", max, s);
        for (int i = 0; i < n; i++)
            if (batches[i] == v) return ls_fail(err, LS_EINVAL, "batch size %ld listed twice", v);
        if (n == cap) return ls_fail(err, LS_EINVAL, "more than %d batch sizes", cap);
        batches[n++] = (int)v;
        c = *end ? end + 1 : end;
        if (*end && !*c) return ls_fail(err, LS_EINVAL, "batch sizes end with a comma: '%s'", s);
    }
    if (n == 0) return ls_fail(err, LS_EINVAL, "no batch sizes given");
    return n;
}
