/* npy.h - read and write float32 arrays in NumPy's .npy format (version 1.0/2.0/3.0 headers).
 *
 * Only little-endian float32 ('<f4'), C order, 1..NPY_MAX_DIMS dimensions. npy_read_f32 allocates
 * out->data with malloc (free with npy_array_free); it validates the header, the shape (no overflow,
 * at most max_elems elements when max_elems > 0) and that the file holds exactly that many bytes.
 * Errors: LS_EIO (cannot open/read/write), LS_EFORMAT (not a float32 .npy, truncated, trailing
 * bytes), LS_ENOMEM, LS_EINVAL (bad arguments). Messages name the file. No global state. */
#ifndef LS_NPY_H
#define LS_NPY_H

#include <stddef.h>

#include "common/err.h"

#define NPY_MAX_DIMS 8

typedef struct {
    float *data;                /* malloc'd, shape[0]*...*shape[ndim-1] floats, C order */
    int ndim;
    size_t shape[NPY_MAX_DIMS];
    size_t count;               /* number of elements */
} npy_array;

/* Reads a float32 .npy file. On failure returns -1, fills err and leaves *out zeroed. */
int npy_read_f32(const char *path, size_t max_elems, npy_array *out, ls_err *err);

/* Frees out->data and zeroes *out; safe on a zeroed array. */
void npy_array_free(npy_array *a);

/* Writes data (shape[0]*...*shape[ndim-1] floats, C order) as a version 1.0 '<f4' .npy file. */
int npy_write_f32(const char *path, const float *data, const size_t *shape, int ndim, ls_err *err);

#endif
