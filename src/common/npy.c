/* npy.c - float32 .npy reader/writer (see npy.h).
 *
 * Hand-written because no packaged C library reads .npy, and the format is tiny: a magic string,
 * a header length, and a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (..)}
 * followed by raw little-endian data. We parse only the three keys NumPy always writes. */
#include "common/npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads '<f4' data with memcpy: port the byte swapping for big-endian hosts"
#endif

#define NPY_MAX_HEADER (1u << 20) /* NumPy's own limit is 10000 bytes for safe loading */

/* Finds 'key': in the header and returns a pointer just past the colon and blanks, or NULL. */
static const char *find_key(const char *hdr, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

/* Parses "(a, b, )" into shape; returns ndim or -1. "()" is a 0-d array (one element). */
static int parse_shape(const char *p, size_t *shape) {
    if (*p != '(') return -1;
    p++;
    int nd = 0;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') return nd;
        if (!isdigit((unsigned char)*p) || nd == NPY_MAX_DIMS) return -1;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v > SIZE_MAX) return -1;
        shape[nd++] = (size_t)v;
        p = end;
        while (*p == 'L') p++; /* Python 2 wrote 10L */
        if (*p != ',' && *p != ')' && *p != ' ') return -1;
    }
}

static int parse_header(const char *hdr, const char *path, npy_array *a, ls_err *err) {
    const char *d = find_key(hdr, "descr");
    if (!d || (strncmp(d, "'<f4'", 5) != 0))
        return ls_fail(err, LS_EFORMAT, "%s: not a little-endian float32 .npy (descr must be '<f4')",
                       path);
    const char *f = find_key(hdr, "fortran_order");
    if (!f || strncmp(f, "False", 5) != 0)
        return ls_fail(err, LS_EFORMAT, "%s: Fortran-order .npy arrays are not supported", path);
    const char *s = find_key(hdr, "shape");
    int nd = s ? parse_shape(s, a->shape) : -1;
    if (nd < 0) return ls_fail(err, LS_EFORMAT, "%s: malformed 'shape' in .npy header", path);
    a->ndim = nd;
    size_t count = 1;
    for (int i = 0; i < nd; i++) {
        if (a->shape[i] && count > SIZE_MAX / sizeof(float) / a->shape[i])
            return ls_fail(err, LS_EFORMAT, "%s: .npy shape is too large", path);
        count *= a->shape[i];
    }
    a->count = count;
    return 0;
}

int npy_read_f32(const char *path, size_t max_elems, npy_array *out, ls_err *err) {
    memset(out, 0, sizeof *out);
    if (!path) return ls_fail(err, LS_EINVAL, "npy_read_f32: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (!fp) return ls_fail(err, errno == ENOENT ? LS_ENOTFOUND : LS_EIO, "%s: %s", path,
                            strerror(errno));
    char *hdr = NULL;
    npy_array a = {0};
    unsigned char pre[12];
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        ls_fail(err, LS_EFORMAT, "%s: not a .npy file (bad magic)", path);
        goto fail;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2) {
            ls_fail(err, LS_EFORMAT, "%s: truncated .npy header", path);
            goto fail;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        ls_fail(err, LS_EFORMAT, "%s: unsupported .npy version %d", path, pre[6]);
        goto fail;
    }
    if (hlen > NPY_MAX_HEADER) {
        ls_fail(err, LS_EFORMAT, "%s: .npy header of %zu bytes is too long", path, hlen);
        goto fail;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        ls_fail(err, LS_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (fread(hdr, 1, hlen, fp) != hlen) {
        ls_fail(err, LS_EFORMAT, "%s: truncated .npy header", path);
        goto fail;
    }
    hdr[hlen] = '\0';
    if (parse_header(hdr, path, &a, err)) goto fail;
    if (max_elems && a.count > max_elems) {
        ls_fail(err, LS_EINVAL, "%s: %zu elements exceed the limit of %zu", path, a.count,
                max_elems);
        goto fail;
    }
    a.data = malloc(a.count ? a.count * sizeof(float) : 1);
    if (!a.data) {
        ls_fail(err, LS_ENOMEM, "%s: out of memory for %zu floats", path, a.count);
        goto fail;
    }
    if (fread(a.data, sizeof(float), a.count, fp) != a.count) {
        ls_fail(err, LS_EFORMAT, "%s: truncated .npy data (header says %zu floats)", path, a.count);
        goto fail;
    }
    if (fgetc(fp) != EOF) {
        ls_fail(err, LS_EFORMAT, "%s: trailing bytes after %zu floats of .npy data", path, a.count);
        goto fail;
    }
    free(hdr);
    fclose(fp);
    *out = a;
    return 0;
fail:
    free(hdr);
    free(a.data);
    fclose(fp);
    return -1;
}

void npy_array_free(npy_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int npy_write_f32(const char *path, const float *data, const size_t *shape, int ndim, ls_err *err) {
    if (!path || !shape || ndim < 1 || ndim > NPY_MAX_DIMS)
        return ls_fail(err, LS_EINVAL, "npy_write_f32: bad arguments (ndim %d)", ndim);
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%zu,%s", shape[i],
                      i + 1 < ndim ? " " : "");
        count *= shape[i];
    }
    if (ndim > 1) n--; /* NumPy writes (3,) for 1-d but (3, 4) for 2-d */
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    if (count && !data) return ls_fail(err, LS_EINVAL, "npy_write_f32: data is NULL");
    /* magic(6) + version(2) + len(2) + dict + padding + '\n' is a multiple of 64 bytes. */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    FILE *fp = fopen(path, "wb");
    if (!fp) return ls_fail(err, LS_EIO, "%s: %s", path, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(dict, 1, (size_t)n, fp) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', fp) != EOF;
    ok = ok && fputc('\n', fp) != EOF;
    ok = ok && fwrite(data, sizeof(float), count, fp) == count;
    if (fclose(fp) != 0) ok = 0;
    if (!ok) return ls_fail(err, LS_EIO, "%s: write failed: %s", path, strerror(errno));
    return 0;
}
