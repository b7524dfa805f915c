/* test_pcm_stream.c - a live signal converted chunk by chunk (pcm_stream) equals pcm_convert of
 * the whole signal, sample for sample (tolerance 0), at every rate, format and channel count, for
 * chunk sizes from one frame to a second; finish is repeatable, reset starts a new signal, and
 * malformed chunks are refused. */
#include "check.h"
#include "audio/pcm.h"
#include "common/err.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 48000 /* 1 s at the highest rate */
#define PI 3.14159265358979323846

/* n frames of a chirp plus noise, interleaved over `ch` channels, as f32 or s16 bytes. */
static size_t make_signal(uint8_t *buf, size_t n, int rate, int ch, pcm_format fmt, unsigned seed) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < ch; c++) {
            seed = seed * 1664525u + 1013904223u;
            double t = (double)i / rate;
            float v = (float)(0.4 * sin(2 * PI * (200 + 900 * t) * t + c) + 0.05 * ((seed >> 8) / 16777216.0 - 0.5));
            if (fmt == PCM_F32LE) memcpy(buf + 4 * k, &v, 4);
            else {
                int16_t s = (int16_t)lrintf(v * 32767.0f);
                memcpy(buf + 2 * k, &s, 2);
            }
            k++;
        }
    return k * (fmt == PCM_F32LE ? 4u : 2u);
}

/* Streams `bytes` in chunks of the given frame counts (cycled) and compares with pcm_convert. */
static void check_equal(int rate, int ch, pcm_format fmt, const size_t *chunk_frames, int n_chunks, size_t frames) {
    size_t fb = (fmt == PCM_F32LE ? 4u : 2u) * (size_t)ch;
    uint8_t *sig = malloc(frames * fb);
    size_t bound = pcm_output_bound(frames, rate);
    float *whole = malloc(bound * sizeof(float)), *streamed = malloc((bound + 2048) * sizeof(float));
    ls_err e = {0};
    pcm_converter *conv = pcm_converter_create(bound, &e);
    pcm_stream *st = pcm_stream_create(fmt, rate, ch, MAX_FRAMES, &e);
    size_t n_whole = 0, got = 0;
    make_signal(sig, frames, rate, ch, fmt, (unsigned)rate);
    CHECK(conv && st && pcm_convert(conv, sig, frames * fb, fmt, rate, ch, whole, bound, &n_whole, &e) == 0,
          "setup: %s", e.msg);
    for (size_t off = 0, c = 0; st && off < frames; c++) {
        size_t take = chunk_frames[c % (size_t)n_chunks];
        if (take > frames - off) take = frames - off;
        size_t n = 0;
        size_t most = pcm_stream_bound(st, take * fb);
        if (pcm_stream_push(st, sig + off * fb, take * fb, streamed + got, bound + 2048 - got, &n, &e) != 0) {
            CHECK(0, "push at frame %zu: %s", off, e.msg);
            break;
        }
        CHECK(n <= most, "a push gives at most pcm_stream_bound (%zu > %zu)", n, most);
        got += n;
        off += take;
    }
    const float *tail = NULL;
    size_t n_tail = 0;
    CHECK(st && pcm_stream_finish(st, &tail, &n_tail, &e) == 0, "finish: %s", e.msg);
    if (st && tail) memcpy(streamed + got, tail, n_tail * sizeof(float));
    got += n_tail;
    CHECK(got == n_whole && got == bound, "%d Hz x%d: %zu samples streamed, %zu whole, bound %zu", rate, ch, got,
          n_whole, bound);
    size_t first_diff = SIZE_MAX;
    for (size_t i = 0; i < got && i < n_whole && first_diff == SIZE_MAX; i++)
        if (memcmp(&streamed[i], &whole[i], sizeof(float)) != 0) first_diff = i;
    CHECK(first_diff == SIZE_MAX, "%d Hz x%d %s: sample %zu differs (%.9g vs %.9g); tolerance 0", rate, ch,
          fmt == PCM_F32LE ? "f32" : "s16", first_diff, first_diff < got ? streamed[first_diff] : 0.0,
          first_diff < got ? whole[first_diff] : 0.0);
    pcm_stream_free(st);
    pcm_converter_free(conv);
    free(sig), free(whole), free(streamed);
}

TEST(chunks_equal_one_conversion_at_every_rate) {
    static const size_t tiny[] = {1, 3, 7}, mixed[] = {37, 1, 200, 4410, 9, 16000};
    static const int rates[] = {8000, 16000, 22050, 44100, 48000};
    for (size_t r = 0; r < sizeof rates / sizeof *rates; r++) {
        size_t ten_ms[] = {(size_t)rates[r] / 100};
        check_equal(rates[r], 1, PCM_F32LE, ten_ms, 1, (size_t)rates[r] * 3 / 2);
        check_equal(rates[r], 2, PCM_S16LE, mixed, 6, (size_t)rates[r] * 2);
    }
    check_equal(44100, 1, PCM_F32LE, tiny, 3, 3000);
}

TEST(finish_is_repeatable_and_reset_starts_a_new_signal) {
    ls_err e = {0};
    uint8_t sig[4 * 4410];
    size_t nb = make_signal(sig, 4410, 44100, 1, PCM_F32LE, 5);
    pcm_stream *st = pcm_stream_create(PCM_F32LE, 44100, 1, MAX_FRAMES, &e);
    float a[4000], b[4000];
    size_t na = 0, nb2 = 0, t1 = 0, t2 = 0;
    const float *tail1, *tail2;
    CHECK(st && pcm_stream_push(st, sig, nb, a, 4000, &na, &e) == 0, "%s", e.msg);
    CHECK(pcm_stream_finish(st, &tail1, &t1, &e) == 0 && pcm_stream_finish(st, &tail2, &t2, &e) == 0 && t1 == t2 &&
              tail1 == tail2, "finish twice gives the same tail (%zu, %zu)", t1, t2);
    CHECK(na + t1 == pcm_output_bound(4410, 44100), "total %zu", na + t1);
    CHECK(pcm_stream_push(st, sig, nb, b, 4000, &nb2, &e) != 0 && e.code == LS_EINVAL, "audio after finish: %s",
          e.msg);
    pcm_stream_reset(st);
    CHECK(pcm_stream_push(st, sig, nb, b, 4000, &nb2, &e) == 0 && nb2 == na && !memcmp(a, b, na * sizeof(float)),
          "after reset the same chunk gives the same samples");
    pcm_stream_free(st);
}

TEST(malformed_streams_and_chunks_are_refused) {
    ls_err e = {0};
    CHECK(!pcm_stream_create(PCM_F32LE, 7000, 1, 100, &e) && e.code == LS_EINVAL, "rate: %s", e.msg);
    CHECK(!pcm_stream_create(PCM_S16LE, 16000, 9, 100, &e) && e.code == LS_EINVAL, "channels: %s", e.msg);
    CHECK(!pcm_stream_create((pcm_format)7, 16000, 1, 100, &e) && e.code == LS_EINVAL, "format: %s", e.msg);
    pcm_stream *st = pcm_stream_create(PCM_F32LE, 22050, 2, 100, &e);
    float out[512], bad[4] = {0.1f, NAN, 0.2f, 0.3f}, many[202] = {0};
    size_t n;
    CHECK(st, "%s", e.msg);
    CHECK(pcm_stream_push(st, bad, 7, out, 512, &n, &e) != 0 && strstr(e.msg, "whole number"), "odd bytes: %s", e.msg);
    CHECK(pcm_stream_push(st, bad, sizeof bad, out, 512, &n, &e) != 0 && strstr(e.msg, "NaN"), "NaN: %s", e.msg);
    CHECK(pcm_stream_push(st, many, sizeof many, out, 512, &n, &e) != 0 && strstr(e.msg, "exceeds"),
          "a chunk over max_frames: %s", e.msg);
    CHECK(pcm_stream_push(st, many, 8 * 20, out, 2, &n, &e) != 0 && strstr(e.msg, "output holds"),
          "output too small: %s", e.msg);
    CHECK(pcm_stream_push(st, NULL, 8, out, 512, &n, &e) != 0, "NULL bytes");
    pcm_stream_free(st);
    pcm_stream_free(NULL);
}

int main(void) {
    RUN(chunks_equal_one_conversion_at_every_rate);
    RUN(finish_is_repeatable_and_reset_starts_a_new_signal);
    RUN(malformed_streams_and_chunks_are_refused);
    return check_summary();
}
