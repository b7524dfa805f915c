/* ort_tune.h - the batch size at which a model runs fastest on this machine, measured.
 *
 * ort_tune_batches() runs a loaded model at each of the given batch sizes on inputs of its own (a
 * fixed pattern: the UNet's cost does not depend on the values) and reports frames per second per
 * size. Per size: one warm-up run (ORT sizes its arena for a new shape), then runs until `seconds`
 * have passed and at least ORT_TUNE_MIN_RUNS were made (at most ORT_TUNE_MAX_RUNS); the figure is
 * the median run. It allocates the buffers and a binding for the largest size, and frees them
 * before it returns; it blocks for about n * seconds plus one run per size. A model with a fixed
 * batch N runs in chunks of N (ort_binding_run), so there the sizes measure chunking. */
#ifndef LS_ORT_TUNE_H
#define LS_ORT_TUNE_H

#include "common/err.h"
#include "infer/ort_model.h"

#define ORT_TUNE_MIN_RUNS 3
#define ORT_TUNE_MAX_RUNS 256
#define ORT_TUNE_MAX_SIZES 32

typedef struct {
    int batch;
    int runs;         /* timed runs */
    double ms_run;    /* median time of one run, ms */
    double fps;       /* batch / median run time: frames (items) per second */
    double fps_min;   /* from the slowest and fastest run */
    double fps_max;
} ort_tune_point;

/* batches: n sizes (1 <= n <= ORT_TUNE_MAX_SIZES), each 1..4096; seconds >= 0 per size (0 = just
 * the minimum runs). out[n] is filled in order. Errors: LS_EINVAL, LS_ENOMEM, the model's. */
int ort_tune_batches(ort_model *m, const int *batches, int n, double seconds, ort_tune_point *out, ls_err *err);

/* Index of the point with the most frames per second (the smaller batch on a tie); -1 if n < 1. */
int ort_tune_best(const ort_tune_point *p, int n);

/* Parses "1,2,4,8" into batches[cap] (each 1..max, no repeats). Returns the count, or -1 with err. */
int ort_tune_parse_batches(const char *s, int *batches, int cap, int max, ls_err *err);

#endif
