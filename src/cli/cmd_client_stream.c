/* cmd_client_stream.c - `lipsync client stream`: an audio file sent to lipsyncd's Stream RPC as a
 * live source would send it (src/client/client_stream.h), then a report of what a live viewer saw
 * (first-frame latency, frame-interval jitter, frames generated/idle/dropped, the server's
 * statistics) and, on request, the frames as an MP4 with the audio and/or JPEG files.
 * Output files are written after the call, so that writing them cannot slow the receiver. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio/pcm.h"
#include "cli/cmd_client.h"
#include "client/client_sink.h"
#include "client/client_stream.h"

/* Writes frame i as DIR/NNNNNN.jpg (its stream index). */
static int write_frames(const char *dir, const cli_stream_result *r, ls_err *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ls_fail(err, LS_EIO, "cannot create %s: %s", dir, strerror(errno));
    char path[4096];
    for (size_t i = 0; i < r->n_frames; i++) {
        const cli_stream_frame *f = &r->frames[i];
        snprintf(path, sizeof path, "%s/%06" PRId64 ".jpg", dir, f->index);
        FILE *fp = fopen(path, "wb");
        if (!fp) return ls_fail(err, LS_EIO, "cannot create %s: %s", path, strerror(errno));
        size_t w = fwrite(f->jpeg, 1, f->len, fp);
        if (fclose(fp) != 0 || w != f->len) return ls_fail(err, LS_EIO, "cannot write %s", path);
    }
    return 0;
}

/* The frames in index order as an MP4; a missing index repeats the frame before it, so the video
 * keeps its clock. The audio starts at frame `offset` (silence before it). */
static int write_mp4(const char *out, const cli_stream_result *r, const float *pcm, size_t n,
                     int64_t offset, ls_err *err) {
    size_t pad = (size_t)offset * CLI_SAMPLES_PER_FRAME;
    float *audio = calloc(pad + n, sizeof *audio);
    if (!audio) return ls_fail(err, LS_ENOMEM, "out of memory for the audio track");
    memcpy(audio + pad, pcm, n * sizeof *pcm);
    cli_sink *sink = cli_sink_open(out, audio, pad + n, err);
    int rc = sink ? 0 : -1;
    for (size_t i = 0; i < r->n_frames && rc == 0; i++) {
        int64_t repeat = i ? r->frames[i].index - r->frames[i - 1].index - 1 : 0;
        for (int64_t k = 0; k < repeat && rc == 0; k++)
            rc = cli_sink_add_jpeg(sink, r->frames[i - 1].jpeg, r->frames[i - 1].len, err);
        if (rc == 0) rc = cli_sink_add_jpeg(sink, r->frames[i].jpeg, r->frames[i].len, err);
    }
    if (rc == 0) {
        rc = cli_sink_close(sink, err);
    } else {
        cli_sink_abort(sink);
    }
    free(audio);
    if (rc != 0) unlink(out);
    return rc;
}

static void report(const client_opts *o, const cli_stream_cfg *c, const cli_stream_result *r) {
    printf("stream: avatar %s, %.2f s of audio in %zu chunks of %d ms (%s send), %s pacing\n",
           o->avatar, (double)c->n_samples / PCM_RATE, r->chunks_sent, c->chunk_ms,
           c->realtime_send ? "realtime" : "burst", c->pacing_realtime ? "realtime" : "burst");
    printf("frames: %zu received (%zu generated, %zu idle), %zu missing indices, in %.2f s\n",
           r->n_frames, r->n_generated, r->n_idle, r->index_gaps, r->wall_ms / 1e3);
    if (r->first_frame_ms >= 0)
        printf("first-frame latency: %.1f ms (first audio chunk sent -> first generated frame "
               "received, frame %" PRId64 ")\n", r->first_frame_ms, r->first_generated_index);
    else
        printf("first-frame latency: n/a (no generated frame)\n");
    if (c->pacing_realtime)
        printf("frame-interval jitter: p50 %.2f ms, p99 %.2f ms (|interval - 40 ms|, %zu intervals)\n",
               r->jitter_p50_ms, r->jitter_p99_ms, r->n_intervals);
    else
        printf("frame-interval jitter: n/a (burst pacing)\n");
    if (c->realtime_send) printf("late chunks: %zu (sent more than one chunk after their time)\n", r->late_chunks);
    printf("events: speech_started %" PRId64 ", speech_ended %" PRId64 ", interrupted %" PRId64 "\n",
           r->events[1], r->events[2], r->events[3]);
    if (r->have_stats) {
        const cli_stream_stats *s = &r->stats;
        printf("server stats: frames_out %" PRId64 " generated %" PRId64 " idle %" PRId64
               " dropped %" PRId64 " late %" PRId64 "; unet jobs %" PRId64 ", runs %" PRId64
               " (%" PRId64 " frames, %" PRId64 " overlapped); latency %.1f ms; samples_in %" PRId64 "; sessions %d; encoder requests %"
               PRId64 " (%" PRId64 " windows), runs %" PRId64 " (%" PRId64 " windows, %" PRId64 " shared)\n",
               s->frames_out, s->frames_generated, s->frames_idle, s->frames_dropped, s->late_frames,
               s->unet_jobs, s->unet_runs, s->unet_items, s->unet_overlapped_runs, (double)s->latency_ms, s->samples_in,
               s->sessions, s->encoder_requests, s->encoder_windows, s->encoder_runs, s->encoder_run_windows,
               s->encoder_shared_runs);
    } else {
        printf("server stats: none received\n");
    }
    fflush(stdout);
}

int client_stream(cli_conn *conn, const client_opts *o) {
    if (!o->avatar || !*o->avatar || !o->audio) {
        fprintf(stderr, "lipsync client stream: --avatar ID and --audio FILE are required\n");
        return 2;
    }
    ls_err err = {0};
    size_t n = 0;
    float *pcm = pcm_load_file(o->audio, 0, &n, &err);
    if (!pcm) {
        fprintf(stderr, "lipsync client: %s\n", err.msg);
        return 2;
    }
    if (n == 0) {
        fprintf(stderr, "lipsync client: %s: no audio\n", o->audio);
        free(pcm);
        return 2;
    }
    cli_stream_cfg c = {.avatar = o->avatar, .pcm = pcm, .n_samples = n, .chunk_ms = o->chunk_ms,
                        .realtime_send = o->realtime,
                        .pacing_realtime = o->pacing < 0 ? o->realtime : o->pacing,
                        .lookahead = o->lookahead, .idle_detect = o->idle_detect,
                        .jpeg_quality = o->jpeg_quality, .stats_ms = o->stats_ms, .keep_frames = o->out || o->frames_dir,
                        .idle_timeout_ms = cli_conn_timeout_ms(conn)};
    cli_stream_result r;
    int rc = cli_stream_run(conn, &c, &r, &err);
    if (rc != 0) {
        if (r.status != CLI_STATUS_LOCAL || r.n_frames)
            fprintf(stderr, "lipsync client: stream ended after %zu frames\n", r.n_frames);
        cli_stream_result_free(&r);
        free(pcm);
        return client_fail(&err);
    }
    report(o, &c, &r);
    if (o->frames_dir && write_frames(o->frames_dir, &r, &err) == 0)
        printf("wrote %zu frames to %s\n", r.n_frames, o->frames_dir);
    if (!err.msg[0] && o->out) {
        /* Burst sessions start with the utterance; realtime ones with idle frames before it. */
        int64_t offset = c.pacing_realtime && r.first_generated_index > 0 ? r.first_generated_index : 0;
        if (write_mp4(o->out, &r, pcm, n, offset, &err) == 0)
            printf("wrote %s: %" PRId64 " frames, audio from frame %" PRId64 "\n", o->out,
                   r.n_frames ? r.frames[r.n_frames - 1].index - r.frames[0].index + 1 : 0, offset);
    }
    cli_stream_result_free(&r);
    free(pcm);
    return err.msg[0] ? client_fail(&err) : 0;
}
