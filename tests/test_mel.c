/* test_mel.c - the mel front end reproduces the reference (golden JSON from librosa/SyncTalk_2D),
 * and any range of rows equals the same rows of the whole-signal computation. */
#include "check.h"
#include "audio/mel.h"
#include "common/err.h"

#include <cjson/cJSON.h>
#include <string.h>

static cJSON *load_json(const char *name) {
    FILE *f = fopen(check_golden(name), "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

/* Flattens a JSON array of numbers or of arrays of numbers into a malloc'd float array. */
static float *json_floats(const cJSON *a, size_t *n) {
    size_t cap = 0, k = 0;
    const cJSON *it, *v;
    cJSON_ArrayForEach(it, a) cap += cJSON_IsArray(it) ? (size_t)cJSON_GetArraySize(it) : 1;
    float *out = malloc(cap * sizeof(float));
    cJSON_ArrayForEach(it, a) {
        if (cJSON_IsArray(it)) cJSON_ArrayForEach(v, it) out[k++] = (float)v->valuedouble;
        else out[k++] = (float)it->valuedouble;
    }
    *n = k;
    return out;
}

static void check_golden_mel(const char *name, size_t want_samples) {
    cJSON *j = load_json(name);
    CHECK(j, "cannot read %s", check_golden(name));
    size_t n, ne;
    float *audio = json_floats(cJSON_GetObjectItem(j, "audio"), &n);
    float *expect = json_floats(cJSON_GetObjectItem(j, "mel_spectrogram"), &ne);
    cJSON_Delete(j);
    CHECK(n == want_samples, "%zu samples", n);
    const size_t rows = mel_frame_count(n);
    CHECK(rows * MEL_BINS == ne, "%zu rows x 80 vs %zu golden values", rows, ne);
    float *got = malloc(ne * sizeof(float));
    ls_err e;
    mel_ctx *m = mel_create(&e);
    CHECK(m, "mel_create: %s", e.msg);
    CHECK(mel_compute(m, audio, n, got, rows, &e) == 0, "%s", e.msg);
    for (size_t i = 0; i < ne; i++)
        CHECK_NEAR(got[i], expect[i], 1e-4, "row %zu bin %zu (tolerance 1e-4 per element)",
                   i / MEL_BINS, i % MEL_BINS);
    mel_free(m);
    free(audio), free(expect), free(got);
}

TEST(mel_matches_reference_for_a_440hz_sine) { check_golden_mel("sine440_640ms_mel.json", 10240); }

TEST(mel_matches_reference_for_speech) { check_golden_mel("speech_640ms_mel.json", 10240); }

TEST(filterbank_matches_librosa_slaney_80x401) {
    cJSON *j = load_json("mel_filters_slaney_80x401.json");
    CHECK(j, "cannot read the golden filterbank");
    size_t n;
    float *expect = json_floats(cJSON_GetObjectItem(j, "filters"), &n);
    cJSON_Delete(j);
    CHECK(n == MEL_BINS * MEL_FFT_BINS, "%zu weights", n);
    ls_err e;
    mel_ctx *m = mel_create(&e);
    CHECK(m, "%s", e.msg);
    float *got = malloc(n * sizeof(float));
    mel_filterbank_dense(m, got);
    for (size_t i = 0; i < n; i++) /* weights <= 0.04, stored as float: 1e-8 is float rounding */
        CHECK_NEAR(got[i], expect[i], 1e-8, "filter %zu bin %zu", i / MEL_FFT_BINS, i % MEL_FFT_BINS);
    mel_free(m);
    free(expect), free(got);
}

/* A deterministic noisy test signal (LCG), so the spectrum has energy in every bin. */
static float *noise(size_t n, unsigned seed) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / (float)(1u << 24) - 0.5f) * 0.6f;
    }
    return x;
}

TEST(any_row_range_equals_the_whole_signal_rows_exactly) {
    const size_t lens[] = {10123, 10000, 399, 1};
    ls_err e;
    mel_ctx *m = mel_create(&e);
    CHECK(m, "%s", e.msg);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t n = lens[li], rows = mel_frame_count(n);
        float *x = noise(n, 7 + (unsigned)li);
        float *whole = malloc(rows * MEL_BINS * sizeof(float));
        float *part = malloc(rows * MEL_BINS * sizeof(float));
        CHECK(mel_rows(m, x, n, 0, rows, whole, &e) == 0, "%s", e.msg);
        for (size_t b = 0; b < rows; b++)
            for (size_t len = 1; b + len <= rows; len = len * 3 + 1) {
                CHECK(mel_rows(m, x, n, b, b + len, part, &e) == 0, "%s", e.msg);
                CHECK(memcmp(part, whole + b * MEL_BINS, len * MEL_BINS * sizeof(float)) == 0,
                      "n=%zu rows [%zu, %zu) differ from the whole-signal rows", n, b, b + len);
            }
        free(x), free(whole), free(part);
    }
    mel_free(m);
}

TEST(rows_complete_in_a_prefix_equal_the_full_signal_rows) {
    /* Streaming: row j needs samples up to 200j+399; once a growing signal has them, the row is
     * final (pre-emphasis only looks back). */
    const size_t n = 8000;
    float *x = noise(n, 3);
    ls_err e;
    mel_ctx *m = mel_create(&e);
    CHECK(m, "%s", e.msg);
    const size_t rows = mel_frame_count(n);
    float *full = malloc(rows * MEL_BINS * sizeof(float)), *row = malloc(MEL_BINS * sizeof(float));
    CHECK(mel_rows(m, x, n, 0, rows, full, &e) == 0, "%s", e.msg);
    for (size_t prefix = 400; prefix <= n; prefix += 333)
        for (size_t j = 0; j < mel_frame_count(prefix) && 200 * j + 400 <= prefix; j++) {
            CHECK(mel_rows(m, x, prefix, j, j + 1, row, &e) == 0, "%s", e.msg);
            CHECK(memcmp(row, full + j * MEL_BINS, MEL_BINS * sizeof(float)) == 0,
                  "row %zu of a %zu-sample prefix differs", j, prefix);
        }
    mel_free(m);
    free(x), free(full), free(row);
}

TEST(silence_is_minus_4_everywhere_and_empty_audio_has_one_row) {
    ls_err e;
    mel_ctx *m = mel_create(&e);
    CHECK(m, "%s", e.msg);
    float x[1000] = {0}, out[6 * MEL_BINS];
    CHECK(mel_frame_count(1000) == 6 && mel_frame_count(0) == 1 && mel_frame_count(199) == 1,
          "1 + n/200 rows");
    CHECK(mel_compute(m, x, 1000, out, 6, &e) == 0, "%s", e.msg);
    /* max(1e-5, 0) -> -100 dB - 20 -> 8 * (-20/100) - 4 = -5.6 -> clipped to -4 */
    for (int i = 0; i < 6 * MEL_BINS; i++) CHECK(out[i] == -4.0f, "element %d is %g", i, out[i]);
    CHECK(mel_compute(m, NULL, 0, out, 1, &e) == 0, "%s", e.msg);
    for (int i = 0; i < MEL_BINS; i++) CHECK(out[i] == -4.0f, "empty audio element %d", i);
    mel_free(m);
}

TEST(bad_row_ranges_are_rejected) {
    ls_err e;
    mel_ctx *m = mel_create(&e);
    CHECK(m, "%s", e.msg);
    float x[400] = {0}, out[4 * MEL_BINS];
    CHECK(mel_rows(m, x, 400, 0, 4, out, &e) == -1 && e.code == LS_EINVAL, "3 rows, asked 4");
    CHECK(mel_rows(m, x, 400, 2, 1, out, &e) == -1 && e.code == LS_EINVAL, "begin > end");
    CHECK(mel_compute(m, x, 400, out, 2, &e) == -1 && e.code == LS_EINVAL, "output too small");
    CHECK(mel_rows(m, x, 400, 1, 1, out, &e) == 0, "an empty range is fine");
    mel_free(m);
}

int main(void) {
    RUN(mel_matches_reference_for_a_440hz_sine);
    RUN(mel_matches_reference_for_speech);
    RUN(filterbank_matches_librosa_slaney_80x401);
    RUN(any_row_range_equals_the_whole_signal_rows_exactly);
    RUN(rows_complete_in_a_prefix_equal_the_full_signal_rows);
    RUN(silence_is_minus_4_everywhere_and_empty_audio_has_one_row);
    RUN(bad_row_ranges_are_rejected);
    return check_summary();
}
