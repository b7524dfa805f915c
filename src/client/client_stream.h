/* client_stream.h - one live session with lipsyncd (lipsync.v1.LipSync/Stream), sent from a clip of
 * 16 kHz audio as a live source would send it, with the timing a live viewer would see.
 *
 * cli_stream_run sends the StreamConfig, then the clip as F32LE chunks of chunk_ms (at wall-clock
 * pace when realtime_send: chunk i leaves at t0 + i * chunk_ms, t0 = when the first chunk is sent;
 * else back to back), then Control FLUSH, Control CLOSE and the half-close, while it receives every
 * response: frames (kept as JPEG bytes with their receive time), events and statistics (the last
 * one kept). One thread, one completion queue, at most one SEND_MESSAGE and one RECV_MESSAGE in
 * flight (gRPC core C API). The call has no deadline; `idle_timeout_ms` bounds any wait for the
 * server (no response for that long while none is expected otherwise: the call is cancelled and
 * ends DEADLINE_EXCEEDED).
 * Memory: the result owns malloc'd frames (free with cli_stream_result_free); allocates per
 * message (client side, not a hot path). Errors: -1 with err "CODE: message" (the gRPC status,
 * also in result->status) or a local LS_EINVAL / LS_ENOMEM (result->status CLI_STATUS_LOCAL). */
#ifndef LS_CLIENT_STREAM_H
#define LS_CLIENT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "client/client_rpc.h"

#define CLI_STREAM_MAX_CHUNK_MS 10000 /* the server takes chunks of up to 10 s */
#define CLI_FRAME_MS 40.0             /* 25 fps */

typedef struct cli_stream_cfg {
    const char *avatar;
    const float *pcm;        /* 16 kHz mono, finite; must outlive the call */
    size_t n_samples;
    int chunk_ms;            /* 1..CLI_STREAM_MAX_CHUNK_MS */
    int realtime_send;       /* 1: chunks at wall-clock pace */
    int pacing_realtime;     /* 1: StreamConfig.pacing = REALTIME, else BURST */
    int lookahead;           /* 0..7 (0 = 7, exact) */
    int idle_detect;         /* StreamConfig.idle_detect */
    int jpeg_quality;        /* 0 = server default */
    int stats_ms;            /* StreamConfig.stats_interval_ms: 0 = server default (1000) */
    int keep_frames;         /* 1: keep every frame's JPEG bytes in the result */
    int idle_timeout_ms;     /* > 0 */
} cli_stream_cfg;

typedef struct cli_stream_frame {
    int64_t index, avatar_frame;
    int generated;
    double t_ms;             /* received, ms after the first audio chunk was sent (may be < 0) */
    uint8_t *jpeg;           /* malloc'd when keep_frames, else NULL */
    size_t len;
} cli_stream_frame;

typedef struct cli_stream_stats { /* the server's last StreamStats */
    int64_t frames_out, frames_generated, frames_idle, frames_dropped, unet_jobs, unet_runs,
        unet_items, samples_in, late_frames, encoder_requests, encoder_windows, encoder_runs,
        encoder_run_windows, encoder_shared_runs, unet_overlapped_runs;
    int32_t queue_depth, sessions;
    float latency_ms;
} cli_stream_stats;

typedef struct cli_stream_result {
    cli_stream_frame *frames;   /* in arrival order */
    size_t n_frames, n_generated, n_idle;
    size_t index_gaps;          /* frame indices skipped (missing) in the received sequence */
    size_t chunks_sent, late_chunks; /* realtime_send: chunks sent > 1 chunk_ms after their time */
    double first_frame_ms;      /* first audio chunk sent -> first generated frame received; -1 none */
    double jitter_p50_ms, jitter_p99_ms; /* |interval - 40 ms| between consecutive frames */
    size_t n_intervals;
    int64_t events[4];          /* by StreamEvent.Kind: [1] speech started, [2] ended, [3] interrupted */
    int64_t first_generated_index; /* -1 none */
    int have_stats, n_stats;
    cli_stream_stats stats;
    double wall_ms;             /* call start to status */
    int status;                 /* grpc_status_code, or CLI_STATUS_LOCAL */
    char message[512];          /* status details */
} cli_stream_result;

/* Runs one session; 0 when the call ends with status OK. *r is always initialised: free it with
 * cli_stream_result_free either way (frames received before an error are kept). */
int cli_stream_run(cli_conn *c, const cli_stream_cfg *cfg, cli_stream_result *r, ls_err *err);
void cli_stream_result_free(cli_stream_result *r);

#endif
