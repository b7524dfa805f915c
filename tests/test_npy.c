/* test_npy.c - float32 .npy files: NumPy's own layout is read, ours round-trips, and anything
 * else (other dtypes, Fortran order, truncation, trailing bytes, bad magic) is refused. */
#include "check.h"
#include "common/err.h"
#include "common/npy.h"

#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/ls_test_npy_XXXXXX";

static const char *path_of(const char *name) {
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Writes a v1.0 header with the given dict (padded like NumPy) followed by nbytes of data. */
static const char *write_raw(const char *name, const char *dict, const void *data, size_t nbytes) {
    const char *p = path_of(name);
    FILE *f = fopen(p, "wb");
    size_t len = strlen(dict), hlen = len + 1;
    while ((10 + hlen) % 64) hlen++;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hlen, 0};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, len, f);
    for (size_t i = len; i + 1 < hlen; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, nbytes, f);
    fclose(f);
    return p;
}

TEST(reads_what_numpy_writes) {
    /* Header bytes as numpy 1.24 np.save writes them for np.array([1.5, -2, 3], '<f4'). */
    const float v[3] = {1.5f, -2.0f, 3.0f};
    const char *p = write_raw("np.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                              v, sizeof v);
    npy_array a;
    ls_err e;
    CHECK(npy_read_f32(p, 0, &a, &e) == 0, "%s", e.msg);
    CHECK(a.ndim == 1 && a.shape[0] == 3 && a.count == 3, "shape (3,)");
    CHECK(a.data[0] == 1.5f && a.data[1] == -2.0f && a.data[2] == 3.0f, "values");
    npy_array_free(&a);
}

TEST(reads_version_2_headers) {
    const char *p = path_of("v2.npy");
    FILE *f = fopen(p, "wb");
    const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }\n";
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, sizeof dict - 1, 0, 0, 0};
    const float v[2] = {0.25f, -0.5f};
    fwrite(pre, 1, 12, f), fwrite(dict, 1, sizeof dict - 1, f), fwrite(v, 4, 2, f);
    fclose(f);
    npy_array a;
    ls_err e;
    CHECK(npy_read_f32(p, 0, &a, &e) == 0, "%s", e.msg);
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 1 && a.data[1] == -0.5f, "[2, 1]");
    npy_array_free(&a);
}

TEST(write_then_read_round_trips_2d) {
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)i * 0.5f - 1.0f;
    const size_t shape[2] = {3, 4};
    ls_err e;
    CHECK(npy_write_f32(path_of("rt.npy"), v, shape, 2, &e) == 0, "%s", e.msg);
    npy_array a;
    CHECK(npy_read_f32(path_of("rt.npy"), 0, &a, &e) == 0, "%s", e.msg);
    CHECK(a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 4, "shape");
    CHECK(memcmp(a.data, v, sizeof v) == 0, "data");
    npy_array_free(&a);
}

static void expect_refused(const char *p, ls_code code, const char *why) {
    npy_array a;
    ls_err e = {0};
    CHECK(npy_read_f32(p, 0, &a, &e) == -1 && e.code == code, "%s: code %d '%s'", why, e.code, e.msg);
    CHECK(strstr(e.msg, p) != NULL, "message names the file: '%s'", e.msg);
    CHECK(a.data == NULL, "nothing returned");
}

TEST(refuses_other_files) {
    const float v[4] = {0};
    expect_refused(write_raw("f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", v,
                             16), LS_EFORMAT, "float64");
    expect_refused(write_raw("fo.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                             v, 16), LS_EFORMAT, "Fortran order");
    expect_refused(write_raw("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                             v, 15), LS_EFORMAT, "truncated data");
    expect_refused(write_raw("long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                             v, 16), LS_EFORMAT, "trailing bytes");
    expect_refused(write_raw("huge.npy", "{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (4611686018427387904, 8), }", v, 16), LS_EFORMAT, "overflow");
    expect_refused(write_raw("shape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': [3], }",
                             v, 12), LS_EFORMAT, "malformed shape");
    FILE *f = fopen(path_of("magic.npy"), "wb");
    fputs("RIFF....WAVEfmt ", f);
    fclose(f);
    expect_refused(path_of("magic.npy"), LS_EFORMAT, "not .npy");
    expect_refused(path_of("missing.npy"), LS_ENOTFOUND, "missing file");
}

TEST(max_elems_limits_the_size) {
    const float v[4] = {0};
    const char *p = write_raw("four.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                              v, 16);
    npy_array a;
    ls_err e;
    CHECK(npy_read_f32(p, 3, &a, &e) == -1 && e.code == LS_EINVAL, "4 > 3 elements");
    CHECK(npy_read_f32(p, 4, &a, &e) == 0, "4 <= 4: %s", e.msg);
    npy_array_free(&a);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    RUN(reads_what_numpy_writes);
    RUN(reads_version_2_headers);
    RUN(write_then_read_round_trips_2d);
    RUN(refuses_other_files);
    RUN(max_elems_limits_the_size);
    const char *names[] = {"np.npy", "v2.npy", "rt.npy", "f8.npy", "fo.npy", "short.npy", "long.npy",
                           "huge.npy", "shape.npy", "magic.npy", "four.npy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(path_of(names[i]));
    rmdir(dir);
    return check_summary();
}
