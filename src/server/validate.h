/* validate.h - checks of the requests of both APIs before any work is done, as pure functions
 * (no I/O, no allocation, no global state) so that a fuzz target can feed them anything.
 *
 * Each check either accepts the unpacked message and fills a plain description of the work
 * (sizes, formats, defaults applied) or returns -1 with LS_EINVAL and a message naming the field
 * and the limit. Byte fields are read with memcpy, so any alignment is fine; floats are taken as
 * little-endian (the hosts lipsyncd supports are). */
#ifndef LS_SRV_VALIDATE_H
#define LS_SRV_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audio/pcm.h"
#include "common/err.h"
#include "lipsync/v1/lipsync.pb-c.h"
#include "monolithic.pb-c.h"

#define VAL_ID_MAX 64
#define VAL_COMPOSITE_MAX_BATCH 32

typedef struct val_limits {
    double max_audio_seconds;  /* longest accepted audio, in seconds of input */
} val_limits;

/* [A-Za-z0-9_.-]{1,64}, and not "." or "..": an avatar id is a name, never a path. */
int val_avatar_id(const char *id, ls_err *err);

/* Every float of bytes (n_floats of them, little-endian) is finite and |x| <= max_abs. */
int val_finite_f32(const uint8_t *bytes, size_t n_floats, float max_abs, const char *what, ls_err *err);

typedef enum { VAL_OUT_JPEG = 0, VAL_OUT_RAW_RGB24 = 1, VAL_OUT_FACE_PATCH = 2 } val_output;

typedef struct val_render {
    const char *avatar_id;
    const uint8_t *audio;      /* the request's bytes */
    size_t audio_bytes;
    pcm_format format;
    int sample_rate;
    size_t samples_16k;        /* what the converter will produce */
    size_t clip_frames;        /* video frames those samples give (>= 1) */
    size_t frames;             /* frames to render: clip_frames, or max_frames when smaller */
    int64_t first_frame;
    val_output output;
    int jpeg_quality;          /* 1..100 (0 in the request -> default_quality) */
} val_render;

int val_render_request(const Lipsync__V1__RenderRequest *in, const val_limits *lim, int default_quality,
                       val_render *out, ls_err *err);

typedef struct val_composite {
    const char *model_id;
    int batch;                 /* 1..32 frames to render */
    int64_t start_frame;
    const uint8_t *audio;      /* float32 LE PCM at sample_rate, or NULL when audio_features given */
    size_t audio_bytes;
    int sample_rate;           /* 0 in the request -> 16000 */
    size_t samples_16k;
    size_t clip_frames;        /* video frames of the audio (0 when audio_features given) */
    const uint8_t *visual;     /* batch x 6 x 320 x 320 float32, or NULL: prepare from the avatar */
    const uint8_t *features;   /* batch x 32 x 16 x 16 float32, or NULL: from raw_audio */
} val_composite;

int val_composite_request(const Monolithic__CompositeBatchRequest *in, const val_limits *lim,
                          val_composite *out, ls_err *err);

#endif
