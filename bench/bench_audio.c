/* bench_audio.c - timing of the audio front end on one core (not a test).
 *
 * Build (from the repository root, after building lipsync_core in build/):
 *   gcc -O2 -Isrc bench/bench_audio.c build/liblipsync_core.a -o build/bench_audio \
 *       $(pkg-config --libs fftw3f libswresample libavformat libavcodec libavutil) \
 *       -lfftw3f_threads -lpthread -lm
 * Run: build/bench_audio [seconds of audio, default 10]
 * Reports the best of several repetitions (the machine is shared), per mel row and per video
 * frame (80/25 = 3.2 mel rows), for whole-clip computation and for streaming-sized calls, and
 * the cost of converting one request of 48 kHz s16 stereo bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "audio/mel.h"
#include "audio/pcm.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    const double secs = argc > 1 ? atof(argv[1]) : 10.0;
    const size_t n = (size_t)(secs * MEL_SAMPLE_RATE), rows = mel_frame_count(n);
    float *x = malloc(n * sizeof(float)), *out = malloc(rows * MEL_BINS * sizeof(float));
    unsigned s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / (float)(1u << 24) - 0.5f) * 0.5f;
    }
    ls_err e;
    mel_ctx *m = mel_create(&e);
    if (!m) return fprintf(stderr, "%s\n", e.msg), 1;

    double best = 1e9;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
        mel_rows(m, x, n, 0, rows, out, &e);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("mel whole clip: %.1f s audio, %zu rows: %.3f ms; %.2f us/row, %.2f us/video frame\n",
           secs, rows, best * 1e3, best / (double)rows * 1e6, best / (double)rows * 3.2e6);

    /* Streaming: rows as they complete, 3 or 4 at a time (one video frame's worth). */
    best = 1e9;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
        size_t r = 0, calls = 0;
        while (r < rows) {
            size_t k = (calls % 5 == 4) ? 4 : 3, end = r + k < rows ? r + k : rows;
            mel_rows(m, x, n, r, end, out + r * MEL_BINS, &e);
            r = end, calls++;
        }
        double dt = (now() - t0) / (double)calls;
        if (dt < best) best = dt;
    }
    printf("mel streaming: %.2f us per call of 3.2 rows on average\n", best * 1e6);

    /* One request: 10 s of 48 kHz s16 stereo -> 16 kHz mono. */
    const size_t frames = (size_t)(secs * 48000);
    int16_t *req = malloc(frames * 2 * sizeof(int16_t));
    for (size_t i = 0; i < 2 * frames; i++) req[i] = (int16_t)((i * 2654435761u) >> 20);
    pcm_converter *c = pcm_converter_create(n + 16, &e);
    float *pcm = malloc((n + 16) * sizeof(float));
    best = 1e9;
    size_t got = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        pcm_convert(c, req, frames * 4, PCM_S16LE, 48000, 2, pcm, n + 16, &got, &e);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("pcm_convert 48 kHz s16 stereo, %.1f s: %.3f ms (%zu samples out)\n", secs, best * 1e3, got);
    best = 1e9;
    for (int rep = 0; rep < 50; rep++) {
        double t0 = now();
        pcm_convert(c, req, 4800 * 4, PCM_S16LE, 48000, 2, pcm, n + 16, &got, &e);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("pcm_convert 100 ms request (incl. swr_init reset): %.1f us\n", best * 1e6);
    pcm_converter_free(c);
    mel_free(m);
    free(x), free(out), free(req), free(pcm);
    return 0;
}
