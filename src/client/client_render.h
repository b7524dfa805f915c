/* client_render.h - one rendering request to lipsyncd through either API, as the client sends it.
 *
 * Frames and audio are tied as the server ties them: 25 fps over 16 kHz audio, so output frame k
 * is centred on samples CLI_SAMPLES_PER_FRAME * k onwards, and a clip of n samples has
 * cli_clip_frames(n) frames (the pipeline's formula, src/audio/features.h).
 *  - API v1 (lipsync.v1.LipSync/Render): the audio is sent as F32LE at 16 kHz; the server renders
 *    the frames the audio covers (up to max_frames) starting at avatar frame first_frame.
 *  - compat (monolithic.MonolithicService/InferBatchComposite): one batch of `batch` frames with
 *    raw_audio = the float32 samples given, visual_frames empty (the server prepares them), and
 *    in-band errors (success=false) turned into LS_EIO "server error: ...". The Go server, and
 *    lipsyncd for compatibility, compute each batch's audio features as if the batch started a new
 *    clip: chunked requests lose the audio context across batch edges (v1 with one request
 *    does not).
 * cli_chunk_audio says which samples a request for frames [k, k+count) sends in each API.
 * Results point into the unpacked reply they own; free with cli_frames_free. Allocates. */
#ifndef LS_CLIENT_RENDER_H
#define LS_CLIENT_RENDER_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "client/client_rpc.h"

#define CLI_SAMPLES_PER_FRAME 640  /* 16000 Hz / 25 fps */
/* Audio sent past a v1 chunk's last frame so that the chunk, as its own clip, covers all its
 * frames: a clip of n samples has about n/640 - 3 frames (16-row mel window, centred STFT). */
#define CLI_V1_TAIL_SAMPLES (4 * CLI_SAMPLES_PER_FRAME)

typedef enum { CLI_API_V1 = 0, CLI_API_COMPAT } cli_api;

typedef struct cli_frames {
    size_t n;                    /* frames received */
    ProtobufCBinaryData *jpeg;   /* n JPEG images, pointing into msg */
    ProtobufCMessage *msg;       /* the unpacked reply */
    double rpc_ms;               /* client wall time of the call */
    double server_ms;            /* the server's own total (total_ms / total_time_ms) */
    int status;                  /* gRPC status of the call (CLI_STATUS_LOCAL: never sent) */
} cli_frames;

/* Frames of a clip of n_samples at 16 kHz (0 when shorter than one mel window). */
size_t cli_clip_frames(size_t n_samples);

/* Sample range [*begin, *end) of pcm (n_samples long) a request for frames k .. k+count-1 sends. */
void cli_chunk_audio(cli_api api, size_t n_samples, size_t k, size_t count, size_t *begin,
                     size_t *end);

/* lipsync.v1 Render of pcm[0 .. n) (16 kHz mono, finite), first_frame >= 0, max_frames 0 = all.
 * Checks that the frames are JPEG-indexed first_frame, first_frame+1, ... in order. */
int cli_render_v1(cli_conn *c, const char *avatar, const float *pcm, size_t n, long long first_frame,
                  int max_frames, cli_frames *out, ls_err *err);

/* monolithic InferBatchComposite of `batch` (1..32) frames from avatar frame start_frame, with
 * pcm[0 .. n) as raw_audio at 16 kHz. Checks success and that exactly `batch` frames came back. */
int cli_render_compat(cli_conn *c, const char *model, const float *pcm, size_t n, int batch,
                      int start_frame, cli_frames *out, ls_err *err);

void cli_frames_free(cli_frames *f);

#endif
