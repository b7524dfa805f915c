/* test_pcm.c - audio in: WAV files (written here) and .npy decode to 16 kHz mono floats; bad
 * files fail cleanly naming the file; the request converter handles s16le/f32le at any rate and
 * refuses malformed input. */
#include "check.h"
#include "audio/pcm.h"
#include "common/err.h"
#include "common/npy.h"

#include <libavutil/log.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define PI 3.14159265358979323846

static char dir[] = "/tmp/ls_test_pcm_XXXXXX";

static const char *path_of(const char *name) {
    static char p[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void put32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put16(FILE *f, uint16_t v) { fwrite(&v, 2, 1, f); }

/* A canonical 44-byte-header WAV: fmt 1 (PCM s16) or 3 (IEEE float). data_bytes is what the
 * header declares; only have_bytes of data are written (less = truncated file). */
static const char *write_wav(const char *name, int is_float, int channels, int rate,
                             const void *data, uint32_t data_bytes, uint32_t have_bytes) {
    const char *p = path_of(name);
    FILE *f = fopen(p, "wb");
    const int bps = is_float ? 4 : 2;
    fwrite("RIFF", 1, 4, f), put32(f, 36 + data_bytes), fwrite("WAVEfmt ", 1, 8, f);
    put32(f, 16), put16(f, is_float ? 3 : 1), put16(f, (uint16_t)channels), put32(f, (uint32_t)rate);
    put32(f, (uint32_t)(rate * channels * bps)), put16(f, (uint16_t)(channels * bps));
    put16(f, (uint16_t)(bps * 8));
    fwrite("data", 1, 4, f), put32(f, data_bytes);
    fwrite(data, 1, have_bytes, f);
    fclose(f);
    return p;
}

TEST(s16_mono_16k_wav_loads_exactly) {
    int16_t v[1000];
    for (int i = 0; i < 1000; i++) v[i] = (int16_t)((i * 97) % 65536 - 32768);
    const char *p = write_wav("s16.wav", 0, 1, 16000, v, sizeof v, sizeof v);
    size_t n;
    ls_err e;
    float *x = pcm_load_file(p, 0, &n, &e);
    CHECK(x, "%s", e.msg);
    CHECK(n == 1000, "%zu samples", n);
    for (int i = 0; i < 1000; i++) /* s16 -> float is v / 32768, exactly representable */
        CHECK(x[i] == v[i] / 32768.0f, "sample %d: %g vs %g", i, x[i], v[i] / 32768.0f);
    free(x);
}

TEST(float_stereo_wav_is_averaged_to_mono) {
    float v[2 * 800];
    for (int i = 0; i < 800; i++) v[2 * i] = 0.5f * (float)sin(i * 0.05), v[2 * i + 1] = -0.25f + i * 1e-4f;
    const char *p = write_wav("f32st.wav", 1, 2, 16000, v, sizeof v, sizeof v);
    size_t n;
    ls_err e;
    float *x = pcm_load_file(p, 0, &n, &e);
    CHECK(x, "%s", e.msg);
    CHECK(n == 800, "%zu samples", n);
    for (int i = 0; i < 800; i++) /* (L + R) / 2, float rounding of the 0.5 weights: 1e-7 */
        CHECK_NEAR(x[i], 0.5 * (v[2 * i] + v[2 * i + 1]), 1e-7, "sample %d", i);
    free(x);
}

TEST(wav_at_44100_is_resampled_to_16k) {
    enum { N = 44100 };
    static int16_t v[N];
    for (int i = 0; i < N; i++) v[i] = (int16_t)lrint(16000.0 * sin(2 * PI * 440.0 * i / 44100.0));
    const char *p = write_wav("s16_44k.wav", 0, 1, 44100, v, sizeof v, sizeof v);
    size_t n;
    ls_err e;
    float *x = pcm_load_file(p, 0, &n, &e);
    CHECK(x, "%s", e.msg);
    CHECK(n == 16000, "1 s at 44.1 kHz is ceil(44100 * 16000 / 44100) = 16000 samples, got %zu", n);
    /* Away from the edges (64 samples, the filter's reach) a 440 Hz tone is reproduced to within
     * the resampler's passband ripple plus s16 quantisation: 1e-3 of full scale. */
    for (size_t i = 64; i + 64 < n; i++)
        CHECK_NEAR(x[i], 16000.0 / 32768.0 * sin(2 * PI * 440.0 * i / 16000.0), 1e-3, "sample %zu", i);
    free(x);
}

static void expect_load_fails(const char *p, ls_code code, const char *why) {
    size_t n = 99;
    ls_err e = {0};
    float *x = pcm_load_file(p, 0, &n, &e);
    CHECK(x == NULL && e.code == code, "%s: code %d '%s'", why, e.code, e.msg);
    CHECK(strstr(e.msg, p) != NULL, "%s: message names the file: '%s'", why, e.msg);
}

TEST(bad_files_fail_cleanly_naming_the_file) {
    int16_t v[16000] = {0};
    expect_load_fails(write_wav("trunc.wav", 0, 1, 16000, v, sizeof v, sizeof v / 2), LS_EFORMAT,
                      "header declares 16000 samples, file holds 8000");
    expect_load_fails(write_wav("empty.wav", 0, 1, 16000, v, 0, 0), LS_EINVAL, "no samples");
    FILE *f = fopen(path_of("hdr.wav"), "wb");
    fwrite("RIFF\x24\x00\x00\x00WAVEfm", 1, 14, f); /* cut inside the fmt chunk */
    fclose(f);
    expect_load_fails(path_of("hdr.wav"), LS_EFORMAT, "header cut short");
    f = fopen(path_of("junk.wav"), "wb");
    for (int i = 0; i < 4096; i++) fputc((i * 7919) & 0xff, f);
    fclose(f);
    expect_load_fails(path_of("junk.wav"), LS_EFORMAT, "not audio");
    expect_load_fails(path_of("missing.wav"), LS_ENOTFOUND, "missing");
}

TEST(non_finite_float_samples_are_refused) {
    float v[400] = {0};
    v[123] = NAN;
    expect_load_fails(write_wav("nan.wav", 1, 1, 16000, v, sizeof v, sizeof v), LS_EINVAL, "NaN wav");
    v[123] = INFINITY;
    expect_load_fails(write_wav("inf.wav", 1, 1, 16000, v, sizeof v, sizeof v), LS_EINVAL, "Inf wav");
    v[123] = NAN;
    const size_t shape[1] = {400};
    ls_err e;
    CHECK(npy_write_f32(path_of("nan.npy"), v, shape, 1, &e) == 0, "%s", e.msg);
    expect_load_fails(path_of("nan.npy"), LS_EINVAL, "NaN npy");
    v[123] = 5000.0f;
    CHECK(npy_write_f32(path_of("huge.npy"), v, shape, 1, &e) == 0, "%s", e.msg);
    expect_load_fails(path_of("huge.npy"), LS_EINVAL, "beyond PCM_MAX_ABS");
}

TEST(npy_samples_load_as_is_in_shape_N_or_N_by_1) {
    float v[300];
    for (int i = 0; i < 300; i++) v[i] = (float)i / 300.0f - 0.5f;
    ls_err e;
    const size_t s1[1] = {300}, s2[2] = {300, 1}, s3[2] = {150, 2}, s0[1] = {0};
    CHECK(npy_write_f32(path_of("a.npy"), v, s1, 1, &e) == 0, "%s", e.msg);
    CHECK(npy_write_f32(path_of("b.npy"), v, s2, 2, &e) == 0, "%s", e.msg);
    for (int k = 0; k < 2; k++) {
        size_t n;
        float *x = pcm_load_file(path_of(k ? "b.npy" : "a.npy"), 0, &n, &e);
        CHECK(x && n == 300 && memcmp(x, v, sizeof v) == 0, "shape %s: %s", k ? "[N,1]" : "[N]", e.msg);
        free(x);
    }
    CHECK(npy_write_f32(path_of("c.npy"), v, s3, 2, &e) == 0, "%s", e.msg);
    expect_load_fails(path_of("c.npy"), LS_EFORMAT, "[N, 2] is not mono samples");
    CHECK(npy_write_f32(path_of("d.npy"), v, s0, 1, &e) == 0, "%s", e.msg);
    expect_load_fails(path_of("d.npy"), LS_EINVAL, "empty npy");
    size_t n;
    CHECK(pcm_load_file(path_of("a.npy"), 299, &n, &e) == NULL && e.code == LS_EINVAL, "max_samples");
}

TEST(converter_s16_at_16k_is_exact_and_stereo_is_averaged) {
    ls_err e;
    pcm_converter *c = pcm_converter_create(16000, &e);
    CHECK(c, "%s", e.msg);
    int16_t st[2 * 500];
    for (int i = 0; i < 500; i++) st[2 * i] = (int16_t)(i * 50 - 12000), st[2 * i + 1] = (int16_t)(-i * 3);
    static float out[16000];
    size_t n;
    CHECK(pcm_convert(c, st, sizeof st, PCM_S16LE, 16000, 2, out, 16000, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 500, "%zu", n);
    for (int i = 0; i < 500; i++) /* (L + R) / 65536 is exact in float for these values */
        CHECK(out[i] == (float)(st[2 * i] + st[2 * i + 1]) / 65536.0f, "frame %d: %g", i, out[i]);
    CHECK(pcm_convert(c, st, sizeof st, PCM_S16LE, 16000, 1, out, 16000, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 1000 && out[1] == st[1] / 32768.0f, "the same bytes as mono: %zu", n);
    pcm_converter_free(c);
}

TEST(converter_resamples_f32_48k_and_matches_the_file_path) {
    enum { N = 48000 };
    static float v[N], out[16001], again[16001];
    for (int i = 0; i < N; i++) v[i] = 0.5f * (float)sin(2 * PI * 440.0 * i / 48000.0);
    ls_err e;
    pcm_converter *c = pcm_converter_create(16001, &e);
    CHECK(c, "%s", e.msg);
    size_t n, n2;
    CHECK(pcm_convert(c, v, sizeof v, PCM_F32LE, 48000, 1, out, 16001, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 16000 && n == pcm_output_bound(N, 48000), "ceil(48000 / 3) = 16000, got %zu", n);
    for (size_t i = 64; i + 64 < n; i++) /* resampler passband ripple: 1e-3 */
        CHECK_NEAR(out[i], 0.5 * sin(2 * PI * 440.0 * i / 16000.0), 1e-3, "sample %zu", i);
    /* A request at another rate in between must not leak filter state into the next one. */
    CHECK(pcm_convert(c, v, 4410 * 4, PCM_F32LE, 44100, 1, again, 16001, &n2, &e) == 0, "%s", e.msg);
    CHECK(n2 == 1600, "4410 frames at 44.1 kHz -> 1600, got %zu", n2);
    CHECK(pcm_convert(c, v, sizeof v, PCM_F32LE, 48000, 1, again, 16001, &n2, &e) == 0, "%s", e.msg);
    CHECK(n2 == n && memcmp(out, again, n * sizeof(float)) == 0, "same request, same output");
    /* The file path resamples the same signal the same way (float internally, zero-padded end). */
    const char *p = write_wav("f32_48k.wav", 1, 1, 48000, v, sizeof v, sizeof v);
    float *x = pcm_load_file(p, 0, &n2, &e);
    CHECK(x, "%s", e.msg);
    CHECK(n2 == n, "file gives %zu samples, converter %zu", n2, n);
    for (size_t i = 0; i < n; i++) CHECK_NEAR(x[i], out[i], 1e-6, "sample %zu", i);
    free(x);
    /* Odd lengths and rates: exactly ceil(frames * 16000 / rate) samples, even for tiny input. */
    const int rates[] = {8000, 11025, 22050, 44100, 47999};
    for (int r = 0; r < 5; r++)
        for (size_t len = 1; len < 3000; len = len * 2 + 1) {
            CHECK(pcm_convert(c, v, len * 4, PCM_F32LE, rates[r], 1, out, 16001, &n, &e) == 0, "%s",
                  e.msg);
            CHECK(n == (len * 16000 + (size_t)rates[r] - 1) / (size_t)rates[r], "%zu at %d: %zu", len,
                  rates[r], n);
        }
    pcm_converter_free(c);
}

static void expect_convert_fails(pcm_converter *c, const void *b, size_t nb, pcm_format f, int rate,
                                 int ch, size_t cap, const char *why) {
    static float out[4000];
    size_t n = 99;
    ls_err e = {0};
    CHECK(pcm_convert(c, b, nb, f, rate, ch, out, cap, &n, &e) == -1 && e.code == LS_EINVAL,
          "%s: code %d '%s'", why, e.code, e.msg);
    CHECK(n == 0, "%s: no output reported", why);
}

TEST(converter_refuses_malformed_requests) {
    ls_err e;
    pcm_converter *c = pcm_converter_create(1000, &e);
    CHECK(c, "%s", e.msg);
    static unsigned char b[64000];
    float f[4] = {0.1f, NAN, 0.2f, 0.3f};
    expect_convert_fails(c, b, 3, PCM_S16LE, 16000, 1, 4000, "odd byte count");
    expect_convert_fails(c, b, 6, PCM_S16LE, 16000, 2, 4000, "half a stereo frame");
    expect_convert_fails(c, b, 6, PCM_F32LE, 16000, 1, 4000, "not a multiple of 4");
    expect_convert_fails(c, b, 0, PCM_S16LE, 16000, 1, 4000, "empty");
    expect_convert_fails(c, f, sizeof f, PCM_F32LE, 16000, 1, 4000, "NaN");
    f[1] = -INFINITY;
    expect_convert_fails(c, f, sizeof f, PCM_F32LE, 24000, 1, 4000, "-Inf");
    f[1] = 1e6f;
    expect_convert_fails(c, f, sizeof f, PCM_F32LE, 16000, 2, 4000, "beyond PCM_MAX_ABS");
    expect_convert_fails(c, b, 100, PCM_S16LE, 7999, 1, 4000, "rate below 8000");
    expect_convert_fails(c, b, 100, PCM_S16LE, 48001, 1, 4000, "rate above 48000");
    expect_convert_fails(c, b, 100, PCM_S16LE, 16000, 0, 4000, "0 channels");
    expect_convert_fails(c, b, 90, PCM_S16LE, 16000, 9, 4000, "9 channels");
    expect_convert_fails(c, b, 100, (pcm_format)7, 16000, 1, 4000, "unknown format");
    expect_convert_fails(c, b, 2002, PCM_S16LE, 16000, 1, 4000, "1001 samples > max 1000");
    expect_convert_fails(c, b, 6004, PCM_S16LE, 48000, 1, 4000, "3002 frames at 48k -> 1001 > 1000");
    expect_convert_fails(c, b, 2000, PCM_S16LE, 16000, 1, 999, "out_cap below the output count");
    size_t n;
    CHECK(pcm_convert(c, b, 6000, PCM_S16LE, 48000, 1, (float[1000]){0}, 1000, &n, &e) == 0 && n == 1000,
          "3000 frames at 48k -> exactly the 1000 allowed: %s", e.msg);
    CHECK(pcm_converter_create(0, &e) == NULL && e.code == LS_EINVAL, "max_samples 0");
    pcm_converter_free(c);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    av_log_set_level(AV_LOG_FATAL); /* the bad files below make FFmpeg warn; we check our errors */
    RUN(s16_mono_16k_wav_loads_exactly);
    RUN(float_stereo_wav_is_averaged_to_mono);
    RUN(wav_at_44100_is_resampled_to_16k);
    RUN(bad_files_fail_cleanly_naming_the_file);
    RUN(non_finite_float_samples_are_refused);
    RUN(npy_samples_load_as_is_in_shape_N_or_N_by_1);
    RUN(converter_s16_at_16k_is_exact_and_stereo_is_averaged);
    RUN(converter_resamples_f32_48k_and_matches_the_file_path);
    RUN(converter_refuses_malformed_requests);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_summary();
}
