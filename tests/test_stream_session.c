/* test_stream_session.c - live sessions against the offline pipeline: streamed frames equal
 * pipe_clip_features + pipe_render of the same audio byte for byte (chunks of 10 ms, 37 ms, 1 s),
 * flush emits everything, interrupt drops pending work, silence costs no UNet runs, 8 sessions
 * share batches, admission and slow-consumer limits hold (also for a consumer that released the
 * frame it popped and then stopped), close mid-stream frees everything
 * (run under the sanitizer build), and realtime pacing against a fake clock. Every test runs
 * three times: with serial scheduler workers, with pipelined ones (stream_sched.h), and with
 * pipelined ones whose UNet bindings take the device-tensor path as on a GPU (host_device.h; the
 * offline reference stays on host tensors); pipelined workers also overlap runs on a deep queue,
 * and a job that cannot be prepared fails alone in any. Demo models. */
#include "check.h"
#include "host_device.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "infer/ort_runtime.h"
#include "pipeline/clip.h"
#include "pipeline/render.h"
#include "server/stream_session.h"

#define W 320
#define H 240
#define NFR 5
#define SR 16000
#define MAXF 128

/* A 5-frame 320x240 avatar with textured, slightly moving face boxes, in memory. */
static avatar *small_avatar(void) {
    static uint8_t pixels[NFR * H * W * 3];
    static ls_box boxes[NFR];
    static avatar av;
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int f = 0; f < NFR; f++) boxes[f] = (ls_box){60 + f * 3, 40, 220 + f * 3, 200};
    av = (avatar){.width = W, .height = H, .fps = 25, .frame_count = NFR, .frames = pixels, .boxes = boxes};
    return &av;
}

/* Speech-like audio: harmonics of a gliding pitch under a 4 Hz syllable envelope, plus noise. */
static void speech(float *x, size_t n, unsigned seed) {
    double ph = 0;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / SR, f0 = 140 + 40 * sin(2 * M_PI * 0.7 * t + seed);
        ph += 2 * M_PI * f0 / SR;
        double env = 0.5 + 0.5 * sin(2 * M_PI * 4 * t + seed), v = 0;
        for (int h = 1; h <= 8; h++) v += sin(h * ph) / h;
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)(0.25 * env * v + 0.02 * ((double)(seed >> 16 & 0x7fff) / 32768.0 - 0.5));
    }
}

static struct {
    ort_runtime *rt;
    ort_model *enc, *unet;
    encb *eb;                /* the sessions' encoder batcher */
    pipe_worker *w;
    sched_limits lim;
    avatar *av;
    int pipeline;            /* the schedulers' workers are pipelined (second and third pass) */
} fx;

typedef struct { size_t n; int avatar_frame[MAXF]; uint8_t *bgr; } framelist;
static uint8_t offline_pixels[MAXF * W * H * 3], stream_pixels[MAXF * W * H * 3];

static int offline_sink(void *ctx, const pipe_frame *f, ls_err *err) {
    (void)err;
    framelist *l = ctx;
    l->avatar_frame[l->n] = f->avatar_frame;
    memcpy(l->bgr + l->n * W * H * 3, f->bgr, (size_t)W * H * 3);
    l->n++;
    return 0;
}

/* The offline render of pcm with the ping-pong walk starting at `start`. */
static int offline(const float *pcm, size_t n, int64_t start, framelist *out) {
    static float mel[4096 * 80], feats[MAXF * 512];
    ls_err err = {0};
    size_t frames;
    *out = (framelist){.bgr = offline_pixels};
    pipe_timings t = {0};
    if (pipe_clip_features(fx.w, pcm, n, mel, feats, &frames, &err) != 0) return -1;
    pipe_render_req req = {.av = fx.av, .feats = feats, .n_frames = frames, .count = frames, .start_frame = start};
    return pipe_render(fx.w, &req, offline_sink, out, &t, &err);
}

static sched *make_sched(int batch, int wait_us, int max_sessions, ls_err *err) {
    sched_cfg sc = {.workers = 2, .max_batch = batch, .max_wait_us = wait_us, .max_sessions = max_sessions,
                    .max_frame_w = W, .max_frame_h = H, .pipeline = fx.pipeline};
    return sched_create(fx.unet, &sc, &fx.lim, err);
}

static void base_cfg(sess_cfg *c, sched *sc) {
    sess_cfg_defaults(c);
    c->av = fx.av;
    c->encoder = fx.eb;
    c->sched = sc;
    c->format = PCM_F32LE; /* 16 kHz float: the converter passes samples through exactly */
}

/* Pops every ready frame (burst) into l; returns how many. */
static size_t drain(stream_session *s, framelist *l) {
    sess_frame f;
    size_t got = 0;
    ls_err err;
    while (sess_pop_frame(s, 0, &f, &err) == 1) {
        if (l && l->n < MAXF) {
            l->avatar_frame[l->n] = f.avatar_frame;
            memcpy(l->bgr + l->n * W * H * 3, f.bgr, (size_t)W * H * 3);
            l->n++;
        }
        got++;
    }
    return got;
}

static void drain_all(stream_session *s, framelist *l) {
    for (int i = 0; i < 2000 && (sess_busy(s) || sess_wait_ready(s, 0)); i++) {
        sess_wait_ready(s, 200000000);
        drain(s, l);
    }
    drain(s, l);
}

/* Streams pcm through one session on sc in chunks of `chunk` samples (the ping-pong walk from
 * `start`), flushes and collects every frame into got; st gets the session's statistics. The
 * session is closed in every case (the caller destroys sc next); -1 after a failure, printed. */
static int stream_all(sched *sc, const float *pcm, size_t n, size_t chunk, int start, framelist *got,
                      sess_stats *st) {
    ls_err err = {0};
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    c.start_frame = start;
    c.queue_limit = 128;
    stream_session *s = sess_create(&c, &err);
    if (!s) return fprintf(stderr, "  session: %s\n", err.msg), -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        if (sess_push_audio(s, pcm + i, k * sizeof(float), 0, &err) != 0) {
            fprintf(stderr, "  push at %zu: %s\n", i, err.msg);
            rc = -1;
        }
        drain(s, got);
    }
    if (rc == 0 && sess_flush(s, &err) != 0) {
        fprintf(stderr, "  flush: %s\n", err.msg);
        rc = -1;
    }
    if (rc == 0) drain_all(s, got);
    sess_stats_get(s, st);
    sess_close(s);
    return rc;
}

static void identity_with_chunks(size_t chunk) {
    static float pcm[SR * 3];
    const size_t n = 36000; /* 2.25 s: 57 frames */
    speech(pcm, n, 7);
    framelist ref;
    CHECK(offline(pcm, n, 2, &ref) == 0, "offline render");
    ls_err err = {0};
    sched *sc = make_sched(4, 2000, 8, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    framelist got = {.bgr = stream_pixels};
    sess_stats st = {0};
    int rc = stream_all(sc, pcm, n, chunk, 2, &got, &st);
    sched_destroy(sc);
    CHECK(rc == 0, "streamed");
    CHECK(st.dropped == 0, "no frame dropped (%llu)", (unsigned long long)st.dropped);
    CHECK(got.n == ref.n, "frame count at flush %zu equals the offline L %zu", got.n, ref.n);
    for (size_t i = 0; i < ref.n; i++) {
        CHECK(got.avatar_frame[i] == ref.avatar_frame[i], "frame %zu avatar frame", i);
        /* Same UNet inputs -> same bytes: tolerance 0. */
        CHECK(memcmp(got.bgr + i * W * H * 3, ref.bgr + i * W * H * 3, (size_t)W * H * 3) == 0,
              "frame %zu identical to the offline render", i);
    }
}

TEST(streamed_frames_equal_offline_10ms_chunks) { identity_with_chunks(160); }
TEST(streamed_frames_equal_offline_37ms_chunks) { identity_with_chunks(592); }
TEST(streamed_frames_equal_offline_1s_chunks) { identity_with_chunks(16000); }

TEST(frames_wait_for_lookahead_and_flush_emits_the_rest) {
    static float pcm[SR];
    speech(pcm, SR, 3);
    ls_err err = {0};
    sched *sc = make_sched(4, 1000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    stream_session *s = sess_create(&c, &err);
    CHECK(s, "session: %s", err.msg);
    CHECK(sess_push_audio(s, pcm, SR * sizeof(float), 0, &err) == 0, "push: %s", err.msg);
    framelist l = {.bgr = stream_pixels};
    drain_all(s, &l);
    /* 1 s: windows k with floor(3.2k) + 16 <= 79 final rows, so k <= 19; frames i + 6 <= 19. */
    size_t before = l.n;
    CHECK(sess_flush(s, &err) == 0, "flush: %s", err.msg);
    drain_all(s, &l);
    sess_close(s);
    sched_destroy(sc);
    CHECK(before == 14, "frames before flush: %zu (expected 14)", before);
    CHECK(l.n == pipe_clip_frames(SR), "after flush all %zu frames (got %zu)", pipe_clip_frames(SR), l.n);
}

TEST(silence_gives_idle_frames_and_no_unet_runs) {
    static float pcm[SR * 2];
    memset(pcm, 0, sizeof pcm);
    ls_err err = {0};
    sched *sc = make_sched(4, 1000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.start_frame = 1;
    stream_session *s = sess_create(&c, &err);
    CHECK(s, "session: %s", err.msg);
    framelist l = {.bgr = stream_pixels};
    for (size_t i = 0; i < SR * 2; i += 592) {
        size_t k = SR * 2 - i < 592 ? SR * 2 - i : 592;
        CHECK(sess_push_audio(s, pcm + i, k * sizeof(float), 0, &err) == 0, "push: %s", err.msg);
        drain(s, &l);
    }
    CHECK(sess_flush(s, &err) == 0, "flush: %s", err.msg);
    drain_all(s, &l);
    sess_stats st;
    sess_stats_get(s, &st);
    sched_stats ss;
    sched_stats_get(sc, &ss);
    sess_event ev;
    int events = sess_pop_event(s, &ev);
    sess_close(s);
    sched_destroy(sc);
    CHECK(l.n == pipe_clip_frames(SR * 2), "all %zu frames delivered (%zu)", pipe_clip_frames(SR * 2), l.n);
    CHECK(st.unet_jobs == 0 && ss.runs == 0, "no UNet runs (%llu jobs, %llu runs)",
          (unsigned long long)st.unet_jobs, (unsigned long long)ss.runs);
    CHECK(st.idle_out == l.n, "every frame idle");
    CHECK(events == 0, "no speech events in silence");
    for (size_t i = 0; i < l.n; i++) {
        int af = avatar_frame_index((int64_t)i, 1, NFR);
        CHECK(l.avatar_frame[i] == af, "frame %zu continues the ping-pong walk", i);
        CHECK(memcmp(l.bgr + i * W * H * 3, avatar_frame(fx.av, af), (size_t)W * H * 3) == 0,
              "frame %zu is the avatar's frame", i);
    }
}

TEST(speech_between_silences_starts_and_ends_with_events_and_fades) {
    static float pcm[SR * 3];
    memset(pcm, 0, sizeof pcm);
    speech(pcm + SR, SR, 5);
    ls_err err = {0};
    sched *sc = make_sched(4, 1000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.queue_limit = 128;
    stream_session *s = sess_create(&c, &err);
    CHECK(s, "session: %s", err.msg);
    CHECK(sess_push_audio(s, pcm, sizeof pcm, 0, &err) == 0, "push: %s", err.msg);
    CHECK(sess_flush(s, &err) == 0, "flush: %s", err.msg);
    sess_frame f;
    int gen[MAXF], fade[MAXF];
    size_t n = 0;
    while (sess_busy(s) || sess_wait_ready(s, 0)) {
        sess_wait_ready(s, 200000000);
        while (sess_pop_frame(s, 0, &f, &err) == 1 && n < MAXF) {
            CHECK(f.index == n && f.pts_samples == n * 640 && f.pts_ms == n * 40, "frame %zu numbering", n);
            gen[n] = f.generated;
            fade[n++] = f.fade_q8;
        }
    }
    sess_event ev[8];
    int ne = 0;
    while (ne < 8 && sess_pop_event(s, &ev[ne])) ne++;
    sched_stats ss;
    sched_stats_get(sc, &ss);
    sess_close(s);
    sched_destroy(sc);
    size_t first = MAXF, last = 0, ngen = 0;
    for (size_t i = 0; i < n; i++)
        if (gen[i]) { ngen++; if (first == MAXF) first = i; last = i; }
    /* Speech covers frames 25..49; the gate, its 16-row window, preroll and hold widen it a little. */
    CHECK(first >= 18 && first <= 26 && last >= 48 && last <= 60, "generated frames %zu..%zu", first, last);
    CHECK(ngen == last - first + 1, "one contiguous speech stretch");
    CHECK(ss.items == ngen, "UNet items %llu equal generated frames %zu", (unsigned long long)ss.items, ngen);
    CHECK(fade[first] == 256 / 4 && fade[first + 1] == 512 / 4 && fade[first + 2] == 768 / 4 &&
          fade[first + 3] == 256, "fade in over 3 frames (%d %d %d %d)", fade[first], fade[first + 1],
          fade[first + 2], fade[first + 3]);
    CHECK(fade[last] == 64 && fade[last - 3] == 256, "fade out");
    CHECK(ne == 2 && ev[0].type == SESS_EV_SPEECH_STARTED && ev[0].frame == first &&
          ev[1].type == SESS_EV_SPEECH_ENDED && ev[1].frame == last + 1, "started/ended events at the edges");
}

TEST(interrupt_drops_pending_audio_and_frames_then_idles) {
    static float pcm[SR * 2];
    speech(pcm, SR * 2, 9);
    ls_err err = {0};
    sched *sc = make_sched(4, 1000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    c.queue_limit = 64; /* no drops: every frame made before the interrupt is read */
    stream_session *s = sess_create(&c, &err);
    CHECK(s, "session: %s", err.msg);
    CHECK(sess_push_audio(s, pcm, SR * 2 * sizeof(float), 0, &err) == 0, "push: %s", err.msg);
    sess_wait_ready(s, 2000000000);
    size_t before = drain(s, NULL);
    CHECK(sess_interrupt(s, &err) == 0, "interrupt");
    CHECK(drain(s, NULL) == 0, "no frame of the interrupted utterance after the interrupt");
    sess_event ev;
    CHECK(sess_pop_event(s, &ev) == 1 && ev.type == SESS_EV_INTERRUPTED && ev.frame == before,
          "interrupted event at frame %zu", before);
    CHECK(!sess_busy(s) || sess_wait_ready(s, 1000000000) == 0, "back to idle");
    /* A new utterance continues the numbering where delivery stopped. */
    CHECK(sess_push_audio(s, pcm, SR * sizeof(float), 0, &err) == 0, "push: %s", err.msg);
    CHECK(sess_flush(s, &err) == 0, "flush");
    sess_frame f;
    size_t n = 0;
    while (sess_busy(s) || sess_wait_ready(s, 0)) {
        sess_wait_ready(s, 200000000);
        while (sess_pop_frame(s, 0, &f, &err) == 1) {
            CHECK(f.index == before + n, "index %llu continues at %zu", (unsigned long long)f.index, before + n);
            n++;
        }
    }
    sess_stats st;
    sess_stats_get(s, &st);
    sess_close(s);
    sched_destroy(sc);
    CHECK(n == pipe_clip_frames(SR), "the new utterance's %zu frames (got %zu)", pipe_clip_frames(SR), n);
    CHECK(st.interrupts == 1, "one interrupt counted");
}

TEST(eight_sessions_share_unet_batches_and_all_match_offline) {
    enum { NS = 8 };
    static float pcm[SR * 2];
    const size_t n = 24000; /* 1.5 s: 37 frames */
    speech(pcm, n, 11);
    framelist ref;
    CHECK(offline(pcm, n, 0, &ref) == 0, "offline render");
    static uint8_t ref_pixels[40 * W * H * 3];
    memcpy(ref_pixels, offline_pixels, ref.n * W * H * 3);
    ls_err err = {0};
    sched *sc = make_sched(8, 20000, NS, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    stream_session *s[NS];
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    c.queue_limit = 64;
    for (int i = 0; i < NS; i++) CHECK((s[i] = sess_create(&c, &err)), "session %d: %s", i, err.msg);
    static uint8_t pixels[NS][40 * W * H * 3];
    framelist got[NS];
    for (int i = 0; i < NS; i++) got[i] = (framelist){.bgr = pixels[i]};
    for (size_t off = 0; off < n; off += 592)
        for (int i = 0; i < NS; i++) {
            size_t k = n - off < 592 ? n - off : 592;
            CHECK(sess_push_audio(s[i], pcm + off, k * sizeof(float), 0, &err) == 0, "push: %s", err.msg);
            drain(s[i], &got[i]);
        }
    for (int i = 0; i < NS; i++) CHECK(sess_flush(s[i], &err) == 0, "flush");
    for (int i = 0; i < NS; i++) drain_all(s[i], &got[i]);
    sched_stats ss;
    sched_stats_get(sc, &ss);
    for (int i = 0; i < NS; i++) sess_close(s[i]);
    sched_destroy(sc);
    for (int i = 0; i < NS; i++) {
        CHECK(got[i].n == ref.n, "session %d: %zu frames of %zu", i, got[i].n, ref.n);
        CHECK(memcmp(got[i].bgr, ref_pixels, ref.n * W * H * 3) == 0, "session %d equals the offline render", i);
    }
    CHECK(ss.items == NS * ref.n, "every frame through the scheduler");
    CHECK(ss.runs < ss.items / 2, "batched across sessions: %llu runs for %llu frames",
          (unsigned long long)ss.runs, (unsigned long long)ss.items);
    printf("     8 sessions: %llu UNet runs for %llu frames (largest batch %llu)\n", (unsigned long long)ss.runs,
           (unsigned long long)ss.items, (unsigned long long)ss.max_batch_seen);
}

TEST(admission_limits_per_model_and_in_total) {
    ls_err err = {0};
    sched_limits lim;
    CHECK(sched_limits_init(&lim, 3) == 0, "limits");
    sched_cfg sc = {.workers = 1, .max_batch = 2, .max_wait_us = 0, .max_sessions = 2, .max_frame_w = W,
                    .max_frame_h = H, .pipeline = fx.pipeline};
    sched *a = sched_create(fx.unet, &sc, &lim, &err), *b = sched_create(fx.unet, &sc, &lim, &err);
    CHECK(a && b, "schedulers: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, a);
    stream_session *s1 = sess_create(&c, &err), *s2 = sess_create(&c, &err);
    CHECK(s1 && s2, "two sessions on model A");
    stream_session *s3 = sess_create(&c, &err);
    CHECK(!s3 && err.code == LS_ENOMEM, "third on A refused (per model): %s", err.msg);
    c.sched = b;
    stream_session *s4 = sess_create(&c, &err);
    CHECK(s4, "one on B (3 in total)");
    err = (ls_err){0};
    stream_session *s5 = sess_create(&c, &err);
    CHECK(!s5 && err.code == LS_ENOMEM, "fourth refused (total): %s", err.msg);
    sess_close(s1);
    stream_session *s6 = sess_create(&c, &err);
    CHECK(s6, "admitted again after a close");
    sess_close(s2);
    sess_close(s4);
    sess_close(s6);
    sched_destroy(a);
    sched_destroy(b);
    sched_limits_destroy(&lim);
}

TEST(slow_consumer_drops_its_oldest_frames_others_unaffected) {
    static float pcm[SR * 2];
    speech(pcm, SR * 2, 13);
    ls_err err = {0};
    sched *sc = make_sched(4, 1000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    c.queue_limit = 4;
    c.max_inflight = 4;
    stream_session *slow = sess_create(&c, &err);
    c.queue_limit = 64;
    stream_session *fast = sess_create(&c, &err);
    CHECK(slow && fast, "sessions: %s", err.msg);
    CHECK(sess_push_audio(slow, pcm, sizeof pcm, 0, &err) == 0 && sess_flush(slow, &err) == 0, "slow push");
    CHECK(sess_push_audio(fast, pcm, sizeof pcm, 0, &err) == 0 && sess_flush(fast, &err) == 0, "fast push");
    framelist l = {.bgr = stream_pixels};
    drain_all(fast, &l);
    /* The slow one is not read until its frames are all made. */
    size_t total = pipe_clip_frames(SR * 2);
    for (int i = 0; i < 400; i++) { /* let the workers finish what fits */
        sess_stats st;
        sess_stats_get(slow, &st);
        if (st.dropped + 4 >= total) break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    /* Every frame is made by now; the last queue_limit may still be at the workers. */
    size_t popped = 0;
    for (int i = 0; i < 100 && sess_busy(slow); i++) {
        sess_wait_ready(slow, 50000000);
        popped += drain(slow, NULL);
    }
    sess_stats st, fst;
    sess_stats_get(slow, &st);
    sess_stats_get(fast, &fst);
    sess_close(slow);
    sess_close(fast);
    sched_destroy(sc);
    CHECK(l.n == total && fst.dropped == 0, "the other session got all %zu frames (%zu)", total, l.n);
    CHECK(popped <= 4, "at most the queue limit waited (%zu)", popped);
    CHECK(st.dropped > 0 && st.dropped + popped == total, "dropped %llu + read %zu = %zu frames",
          (unsigned long long)st.dropped, popped, total);
}

/* The gRPC handler pops a frame, packs it into a message whose send may never complete, and
 * releases it: the session must then drop past it (burst), not stall behind the held frame. */
TEST(a_consumer_that_released_its_last_frame_and_stopped_reading_drops_the_oldest) {
    static float pcm[SR * 2];
    speech(pcm, SR * 2, 23);
    ls_err err = {0};
    sched *sc = make_sched(4, 1000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    c.queue_limit = 4;
    c.max_inflight = 4;
    stream_session *s = sess_create(&c, &err);
    CHECK(s, "session: %s", err.msg);
    /* 0.6 s gives the first few frames; the consumer takes frame 0 before the rest arrives. */
    CHECK(sess_push_audio(s, pcm, 9600 * sizeof(float), 0, &err) == 0, "push: %s", err.msg);
    sess_frame f;
    CHECK(sess_wait_ready(s, 2000000000) && sess_pop_frame(s, 0, &f, &err) == 1 && f.index == 0, "frame 0 popped");
    sess_release_frame(s);
    CHECK(sess_push_audio(s, pcm + 9600, (SR * 2 - 9600) * sizeof(float), 0, &err) == 0 && sess_flush(s, &err) == 0,
          "push: %s", err.msg);
    size_t total = pipe_clip_frames(SR * 2);
    sess_stats st;
    for (int i = 0; i < 400; i++) { /* the workers go on without the consumer */
        sess_stats_get(s, &st);
        if (st.dropped + 1 + 4 >= total) break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    size_t later = 0;
    for (int i = 0; i < 100 && sess_busy(s); i++) {
        sess_wait_ready(s, 50000000);
        later += drain(s, NULL);
    }
    sess_stats_get(s, &st);
    sess_close(s);
    sched_destroy(sc);
    CHECK(st.dropped > 0, "frames dropped once the consumer stopped (%llu)", (unsigned long long)st.dropped);
    CHECK(later <= 4 && 1 + st.dropped + later == total, "1 popped + %llu dropped + %zu queued = %zu",
          (unsigned long long)st.dropped, later, total);
}

TEST(close_mid_stream_frees_everything) {
    static float pcm[SR * 2];
    speech(pcm, SR * 2, 17);
    ls_err err = {0};
    sched *sc = make_sched(4, 50000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    for (int round = 0; round < 3; round++) {
        stream_session *s = sess_create(&c, &err);
        CHECK(s, "session: %s", err.msg);
        CHECK(sess_push_audio(s, pcm, sizeof pcm, 0, &err) == 0, "push");
        if (round == 1) drain(s, NULL);
        sess_close(s); /* jobs queued or running: taken back or awaited */
    }
    sched_stats ss;
    sched_stats_get(sc, &ss);
    sched_destroy(sc);
    CHECK(ss.sessions == 0 && ss.queued == 0, "scheduler empty after the closes");
}

TEST(realtime_pacing_fills_idle_and_keeps_25fps_on_a_fake_clock) {
    static float pcm[SR];
    speech(pcm, SR, 19);
    ls_err err = {0};
    sched *sc = make_sched(4, 1000, 4, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    sess_cfg c;
    base_cfg(&c, sc);
    c.idle_detect = 0;
    c.pacing = SESS_PACE_REALTIME;
    c.realtime_delay = 14;
    c.auto_flush_ms = 300;
    stream_session *s = sess_create(&c, &err);
    CHECK(s, "session: %s", err.msg);
    const uint64_t T = SESS_FRAME_NS, t0 = 1000000000000ull;
    sess_frame f;
    CHECK(sess_pop_frame(s, t0, &f, &err) == 1 && f.index == 0 && !f.generated, "idle frame 0 at once");
    CHECK(sess_pop_frame(s, t0 + T / 2, &f, &err) == 0, "nothing before frame 1 is due");
    CHECK(sess_next_due_ns(s) == t0 + T, "frame 1 due 40 ms later");
    CHECK(sess_pop_frame(s, t0 + T, &f, &err) == 1 && f.index == 1 && !f.generated, "idle frame 1");
    /* Audio at 50 ms, never flushed: the utterance starts at frame 2 + 14 = 16. */
    CHECK(sess_push_audio(s, pcm, sizeof pcm, t0 + T + T / 4, &err) == 0, "push: %s", err.msg);
    size_t L = pipe_clip_frames(SR), n_gen = 0;
    for (uint64_t k = 2; k < 16 + L + 5; k++) {
        uint64_t now = t0 + k * T;
        CHECK(sess_next_due_ns(s) == now, "frame %llu due at its 40 ms slot", (unsigned long long)k);
        if (k >= 16) sess_wait_ready(s, 2000000000); /* the workers, not the clock, may lag */
        CHECK(sess_pop_frame(s, now, &f, &err) == 1, "frame %llu released on time", (unsigned long long)k);
        CHECK(f.index == k && f.pts_ms == k * 40, "frame %llu in order", (unsigned long long)k);
        CHECK(f.generated == (k >= 16 && k < 16 + L), "frame %llu generated flag", (unsigned long long)k);
        n_gen += (size_t)f.generated;
    }
    sess_stats st;
    sess_stats_get(s, &st);
    sess_close(s);
    sched_destroy(sc);
    CHECK(n_gen == L, "all %zu frames of the utterance (auto flush after 300 ms)", L);
    CHECK(st.late_frames == 0, "no late frames");
}

/* Jobs submitted straight to a scheduler, counted as they complete. */
typedef struct {
    sched_job j;
    int rc;
    char msg[sizeof(((ls_err *)0)->msg)];
} raw_job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} raw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void raw_done(sched_job *job, int rc, const ls_err *err) {
    raw_job *r = (raw_job *)job;
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s", rc ? err->msg : "");
    pthread_mutex_lock(&raw.mu);
    raw.done++;
    pthread_cond_broadcast(&raw.cv);
    pthread_mutex_unlock(&raw.mu);
}

/* Submits jobs[0..n) at once and waits until every one completed. */
static void run_raw(sched *sc, raw_job *jobs, int n) {
    pthread_mutex_lock(&raw.mu);
    raw.done = 0;
    pthread_mutex_unlock(&raw.mu);
    for (int i = 0; i < n; i++) sched_submit(sc, &jobs[i].j);
    pthread_mutex_lock(&raw.mu);
    while (raw.done < n) pthread_cond_wait(&raw.cv, &raw.mu);
    pthread_mutex_unlock(&raw.mu);
}

TEST(a_job_that_cannot_be_prepared_fails_alone_and_its_batch_completes) {
    enum { N = 12 };
    static float audio[N][ORT_UNET_AUDIO_ELEMS];
    static uint8_t ref[N][W * H * 3], got[N][W * H * 3];
    static raw_job jobs[N];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < ORT_UNET_AUDIO_ELEMS; k++) audio[i][k] = (float)sin(0.01 * k + i) * 2.0f;
    avatar big = *fx.av;
    big.width = W + 8; /* beyond the scheduler's max_frame_w: refused before its pixels are read */
    ls_err err = {0};
    sched_cfg cfg = {.workers = 1, .max_batch = 4, .max_wait_us = 0, .max_sessions = 1, .max_frame_w = W,
                     .max_frame_h = H, .pipeline = fx.pipeline};
    sched *sc = sched_create(fx.unet, &cfg, &fx.lim, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            int bad = pass == 1 && i % 3 == 1;
            jobs[i] = (raw_job){.j = {.owner = jobs, .av = bad ? &big : fx.av, .avatar_frame = i % NFR,
                                      .fade_q8 = 256, .audio = audio[i], .dst = pass ? got[i] : ref[i],
                                      .done = raw_done}, .rc = 99};
        }
        run_raw(sc, jobs, N);
        for (int i = 0; i < N; i++) {
            if (pass == 0) {
                CHECK(jobs[i].rc == 0, "job %d: %s", i, jobs[i].msg);
            } else if (i % 3 == 1) {
                CHECK(jobs[i].rc == -1 && strstr(jobs[i].msg, "exceed"), "job %d refused: %s", i, jobs[i].msg);
            } else {
                CHECK(jobs[i].rc == 0, "job %d: %s", i, jobs[i].msg);
                CHECK(memcmp(got[i], ref[i], sizeof ref[i]) == 0, "job %d equals its run without the bad jobs", i);
            }
        }
    }
    sched_stats ss;
    sched_stats_get(sc, &ss);
    sched_destroy(sc);
    CHECK(ss.items == N + N - N / 3, "every good job ran once (%llu)", (unsigned long long)ss.items);
}

/* Only with pipelined workers: a deep queue makes the worker prepare batch i+1 while batch i runs,
 * and the frames still equal the offline render (two batches sharing one slot set would not). */
TEST(a_pipelined_worker_overlaps_runs_on_a_deep_queue) {
    static float pcm[SR * 2];
    const size_t n = 32000; /* 2 s: 50 frames */
    speech(pcm, n, 23);
    framelist ref;
    CHECK(offline(pcm, n, 0, &ref) == 0, "offline render");
    ls_err err = {0};
    sched_cfg cfg = {.workers = 1, .max_batch = 4, .max_wait_us = 0, .max_sessions = 1, .max_frame_w = W,
                     .max_frame_h = H, .pipeline = 1};
    sched *sc = sched_create(fx.unet, &cfg, &fx.lim, &err);
    CHECK(sc, "scheduler: %s", err.msg);
    framelist got = {.bgr = stream_pixels};
    sess_stats st;
    int rc = stream_all(sc, pcm, n, n, 0, &got, &st); /* all the audio in one push: a deep queue */
    sched_stats ss;
    sched_stats_get(sc, &ss);
    sched_destroy(sc);
    CHECK(rc == 0, "streamed");
    CHECK(got.n == ref.n, "%zu frames of %zu", got.n, ref.n);
    for (size_t i = 0; i < ref.n && i < got.n; i++)
        CHECK(memcmp(got.bgr + i * W * H * 3, ref.bgr + i * W * H * 3, (size_t)W * H * 3) == 0,
              "frame %zu identical to the offline render", i);
    CHECK(ss.overlapped_runs > 0 && ss.overlapped_runs < ss.runs, "%llu of %llu runs prepared during another",
          (unsigned long long)ss.overlapped_runs, (unsigned long long)ss.runs);
    printf("     pipelined: %llu runs, %llu overlapped, largest batch %llu\n", (unsigned long long)ss.runs,
           (unsigned long long)ss.overlapped_runs, (unsigned long long)ss.max_batch_seen);
}

/* After the third pass: its schedulers really ran the UNet through device copies. */
TEST(the_device_pass_copied_through_the_device_tensors) {
    CHECK(host_device_bytes > 0, "no bytes copied to or from the device tensors");
}

int main(void) {
    ls_err err = {0};
    ort_model_opts mo = {.intra_threads = 1};
    pipe_worker_cfg wc = {.max_batch = 4, .max_frame_w = W, .max_frame_h = H};
    fx.av = small_avatar();
    if (sched_limits_init(&fx.lim, 16) != 0 || !(fx.rt = ort_runtime_create(NULL, &err)) ||
        !(fx.enc = ort_model_load(fx.rt, check_model("demo_encoder.onnx"), ORT_ROLE_ENCODER, &mo, &err)) ||
        !(fx.unet = ort_model_load(fx.rt, check_model("demo_unet.onnx"), ORT_ROLE_UNET, &mo, &err)) ||
        !(fx.eb = encb_create(fx.enc, 4 * PIPE_ENC_BATCH, 1000, &err)) ||
        !(fx.w = pipe_worker_create(&wc, &err)) || pipe_worker_bind(fx.w, fx.enc, fx.unet, &err) != 0) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return 1;
    }
    OrtMemoryInfo *device_mem = NULL;
    for (int pass = 0; pass < 3; pass++) {
        fx.pipeline = pass > 0;
        if (pass == 2) { /* schedulers made from now on bind the UNet's device copies */
            if (!(device_mem = host_device_memory(fx.rt))) return 1;
            host_device_use(fx.unet, device_mem);
            host_device_bytes = 0;
        }
        printf("-- %s scheduler workers\n", pass == 2 ? "pipelined, device tensors," : fx.pipeline ? "pipelined" : "serial");
        RUN(streamed_frames_equal_offline_10ms_chunks);
        RUN(streamed_frames_equal_offline_37ms_chunks);
        RUN(streamed_frames_equal_offline_1s_chunks);
        RUN(frames_wait_for_lookahead_and_flush_emits_the_rest);
        RUN(silence_gives_idle_frames_and_no_unet_runs);
        RUN(speech_between_silences_starts_and_ends_with_events_and_fades);
        RUN(interrupt_drops_pending_audio_and_frames_then_idles);
        RUN(eight_sessions_share_unet_batches_and_all_match_offline);
        RUN(admission_limits_per_model_and_in_total);
        RUN(slow_consumer_drops_its_oldest_frames_others_unaffected);
        RUN(a_consumer_that_released_its_last_frame_and_stopped_reading_drops_the_oldest);
        RUN(close_mid_stream_frees_everything);
        RUN(realtime_pacing_fills_idle_and_keeps_25fps_on_a_fake_clock);
        RUN(a_job_that_cannot_be_prepared_fails_alone_and_its_batch_completes);
    }
    RUN(the_device_pass_copied_through_the_device_tensors);
    RUN(a_pipelined_worker_overlaps_runs_on_a_deep_queue);
    pipe_worker_destroy(fx.w);
    encb_destroy(fx.eb);
    ort_model_destroy(fx.unet);
    ort_model_destroy(fx.enc);
    if (device_mem) ort_runtime_api(fx.rt)->ReleaseMemoryInfo(device_mem);
    ort_runtime_destroy(fx.rt);
    sched_limits_destroy(&fx.lim);
    return check_summary();
}
