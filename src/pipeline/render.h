/* render.h - turn a range of video frames of a clip into finished frames, batch by batch.
 *
 * For each batch of up to cfg.max_batch frames: pick each frame's avatar frame (ping-pong walk from
 * start_frame), prepare the UNet's visual input (prepare.h) and audio input (feat_window), or take
 * the caller's (image_in / audio_in), run the UNet once, then composite each output into the
 * worker's frame buffer (paste.h) and hand the finished frame to the caller's sink, in frame order.
 * The worker must be bound to the UNet.
 *
 * A pipelined worker (worker.h: cfg.pipeline) overlaps the stages when there is more than one
 * batch: the UNet computes batch i on the worker's runner thread while the calling thread prepares
 * batch i+1 and then composites batch i; the output is the same, frame for frame. Its UNet always
 * runs on the runner, a single batch too (one thread per binding: ORT's CUDA provider keeps its
 * graphs per thread). The sink is always called from the calling thread, in frame order.
 *
 * Frame buffer: by default render copies the whole avatar frame into it before pasting (sinks that
 * read every pixel: MP4, raw frames). A sink that reads only part of each frame (spliced JPEG reads
 * the restart segments under the box; a face patch only the box) names that part through
 * req.region; render then restores only that rectangle (it always contains the box) and the
 * pixels outside frame.valid are undefined: 0.15 ms of copy saved per 1280x720 frame.
 *
 * Memory: every buffer is the worker's; nothing allocates. The frame passed to the sink is valid
 * only during the call. Errors: the first error stops the render (sink errors too), with a message
 * naming the frame. A set cancel flag stops it between batches with LS_ECANCELLED. */
#ifndef LS_PIPELINE_RENDER_H
#define LS_PIPELINE_RENDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "avatar/avatar.h"
#include "common/box.h"
#include "common/err.h"
#include "pipeline/worker.h"

typedef struct pipe_frame {
    size_t index;           /* video frame number within the clip */
    int avatar_frame;       /* which avatar frame it shows */
    const uint8_t *bgr;     /* width x height BGR, rows stride bytes apart */
    int width, height;
    size_t stride;
    ls_box box;             /* where the face was redrawn */
    ls_box valid;           /* the pixels of bgr that hold the finished frame (contains box); the
                             * whole frame unless req.region asked for less; all zero in a
                             * frame made by hand means the whole frame too */
} pipe_frame;

/* Receives each finished frame; returns 0, or -1 with err filled to stop the render. */
typedef int (*pipe_sink_fn)(void *ctx, const pipe_frame *frame, ls_err *err);

/* Optional, called with the sink's ctx before frame f is composited (f->bgr is NULL, every other
 * field set): writes to *need the rectangle of the frame the sink will read. Returns 0, or -1 with
 * err filled to stop the render. */
typedef int (*pipe_region_fn)(void *ctx, const pipe_frame *f, ls_box *need, ls_err *err);

typedef struct pipe_render_req {
    const avatar *av;
    const float *feats;     /* the clip's encoder features (clip.h), n_frames rows of 512 */
    size_t n_frames;
    size_t first, count;    /* render frames first .. first+count-1 (within n_frames) */
    int64_t start_frame;    /* avatar frame the ping-pong walk starts at for frame 0 (>= 0) */
    const atomic_int *cancel; /* optional: nonzero asks the render to stop */
    /* Optional caller-made UNet inputs (the Go API lets clients send them), one item per rendered
     * frame, item j for frame first + j. image_in: [count][6][320][320] replaces the prepared
     * visual input (frames are still cropped: paste-back needs the crop). audio_in:
     * [count][32][16][16] replaces feat_window(feats, ...); feats may then be NULL. Copied into
     * the worker's buffers batch by batch; the caller checks the values are finite. */
    const float *image_in;
    const float *audio_in;
    /* optional: av's prepared crops (avatar_cache.h); the inputs are then taken from it instead
     * of resizing each box again (same values bit for bit). Must have been made for av. */
    const struct pipe_avcache *prepared;
    /* optional: the part of each frame the sink reads (see above); NULL = the whole frame */
    pipe_region_fn region;
} pipe_render_req;

/* Time spent per stage, in nanoseconds, added to by pipe_render. */
typedef struct pipe_timings {
    uint64_t prep_ns, unet_ns, paste_ns, sink_ns; /* pipelined: unet_ns is the runs' own time */
    uint64_t frames, batches;
} pipe_timings;

int pipe_render(pipe_worker *w, const pipe_render_req *req, pipe_sink_fn sink, void *sink_ctx,
                pipe_timings *t, ls_err *err);

/* Monotonic clock in nanoseconds (for timings here and in callers). */
uint64_t pipe_now_ns(void);

#endif
