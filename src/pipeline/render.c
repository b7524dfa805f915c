/* render.c - the per-batch frame loop: prepare, UNet, paste-back, sink (see render.h). */
#include "pipeline/render.h"

#include <string.h>
#include <time.h>

#include "audio/features.h"
#include "image/paste.h"
#include "image/prepare.h"
#include "pipeline/avatar_cache.h"
#include "pipeline/unet_io.h"
#include "pipeline/unet_runner.h"

uint64_t pipe_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int render_prepare(pipe_worker *w, const pipe_render_req *req, size_t k, int b, int *av_idx,
                          ls_err *err) {
    const avatar *av = req->av;
    int idx = avatar_frame_index((int64_t)k, req->start_frame, av->frame_count);
    if (idx < 0) return ls_fail(err, LS_EINVAL, "start frame %lld is negative", (long long)req->start_frame);
    *av_idx = idx;
    size_t j = k - req->first; /* item of the caller's inputs */
    if (pipe_unet_prepare(w, b, av, idx, req->prepared, req->image_in ? req->image_in + j * ORT_UNET_IMG_ELEMS : NULL,
                          err) != 0)
        return ls_wrap(err, "frame %zu (avatar frame %d)", k, idx);
    if (req->audio_in) {
        memcpy(w->unet_audio + (size_t)b * ORT_UNET_AUDIO_ELEMS, req->audio_in + j * ORT_UNET_AUDIO_ELEMS,
               sizeof(float) * ORT_UNET_AUDIO_ELEMS);
        return 0;
    }
    return feat_window(req->feats, req->n_frames, k, w->unet_audio + (size_t)b * ORT_UNET_AUDIO_ELEMS,
                       err);
}

/* Copies rectangle r of the avatar frame into the worker's frame buffer (same stride). */
static void restore(uint8_t *dst, const uint8_t *src, size_t stride, ls_box r, int full) {
    if (full) {
        memcpy(dst, src, stride * (size_t)r.y2);
        return;
    }
    size_t off = (size_t)r.y1 * stride + (size_t)r.x1 * 3, n = (size_t)(r.x2 - r.x1) * 3;
    for (int y = r.y1; y < r.y2; y++, off += stride) memcpy(dst + off, src + off, n);
}

static int render_composite(pipe_worker *w, const pipe_render_req *req, size_t k, int b, int idx,
                            void *sink_ctx, pipe_frame *out, ls_err *err) {
    const avatar *av = req->av;
    size_t stride = (size_t)av->width * 3;
    ls_box box = av->boxes[idx], all = {0, 0, av->width, av->height}, need = all;
    *out = (pipe_frame){.index = k, .avatar_frame = idx, .width = av->width, .height = av->height,
                        .stride = stride, .box = box, .valid = all};
    if (prep_check_box(box, av->width, av->height, err)) return ls_wrap(err, "frame %zu (avatar frame %d)", k, idx);
    if (req->region) {
        if (req->region(sink_ctx, out, &need, err) != 0) return -1;
        /* Always the box (paste writes it) and never outside the frame. */
        need = (ls_box){need.x1 < box.x1 ? need.x1 : box.x1, need.y1 < box.y1 ? need.y1 : box.y1,
                        need.x2 > box.x2 ? need.x2 : box.x2, need.y2 > box.y2 ? need.y2 : box.y2};
        if (need.x1 < 0) need.x1 = 0;
        if (need.y1 < 0) need.y1 = 0;
        if (need.x2 > av->width) need.x2 = av->width;
        if (need.y2 > av->height) need.y2 = av->height;
    }
    int full = need.x1 == 0 && need.y1 == 0 && need.x2 == av->width && need.y2 == av->height;
    restore(w->frame, avatar_frame(av, idx), stride, need, full);
    if (pipe_unet_paste(w, b, box, w->frame, av->width, av->height, stride, err) != 0)
        return ls_wrap(err, "frame %zu (avatar frame %d)", k, idx);
    out->bgr = w->frame;
    out->valid = need;
    return 0;
}

static int render_check(const pipe_worker *w, const pipe_render_req *req, ls_err *err) {
    if (!w->unet_binding) return ls_fail(err, LS_EINTERNAL, "worker has no UNet bound");
    if (req->first > req->n_frames || req->count > req->n_frames - req->first)
        return ls_fail(err, LS_EINVAL, "frames %zu..%zu outside the clip's %zu frames", req->first,
                       req->first + req->count, req->n_frames);
    if (req->start_frame < 0) return ls_fail(err, LS_EINVAL, "start frame must not be negative");
    if (!req->feats && !req->audio_in) return ls_fail(err, LS_EINVAL, "no audio features given");
    if (req->prepared && pipe_avcache_avatar(req->prepared) != req->av)
        return ls_fail(err, LS_EINVAL, "the prepared-crop cache belongs to another avatar");
    if (req->av->width > w->cfg.max_frame_w || req->av->height > w->cfg.max_frame_h)
        return ls_fail(err, LS_EINVAL, "avatar frames %dx%d exceed the worker's %dx%d",
                       req->av->width, req->av->height, w->cfg.max_frame_w, w->cfg.max_frame_h);
    return 0;
}

/* One batch of the render: frames k0 .. k0+n-1 in slot set `set`. */
typedef struct batch {
    size_t k0;
    int n, set;
    int av_idx[PIPE_MAX_BATCH];
} batch;

static int batch_prepare(pipe_worker *w, const pipe_render_req *req, batch *bt, pipe_timings *t, ls_err *err) {
    uint64_t t0 = pipe_now_ns();
    int s0 = bt->set * w->cfg.max_batch;
    for (int b = 0; b < bt->n; b++)
        if (render_prepare(w, req, bt->k0 + (size_t)b, s0 + b, &bt->av_idx[b], err) != 0) return -1;
    t->prep_ns += pipe_now_ns() - t0;
    return 0;
}

static int batch_finish(pipe_worker *w, const pipe_render_req *req, const batch *bt, pipe_sink_fn sink,
                        void *sink_ctx, pipe_timings *t, ls_err *err) {
    int s0 = bt->set * w->cfg.max_batch;
    for (int b = 0; b < bt->n; b++) {
        pipe_frame f;
        uint64_t t3 = pipe_now_ns();
        if (render_composite(w, req, bt->k0 + (size_t)b, s0 + b, bt->av_idx[b], sink_ctx, &f, err) != 0) return -1;
        uint64_t t4 = pipe_now_ns();
        if (sink(sink_ctx, &f, err) != 0) return -1;
        t->paste_ns += t4 - t3;
        t->sink_ns += pipe_now_ns() - t4;
    }
    t->frames += (uint64_t)bt->n;
    t->batches++;
    return 0;
}

static void batch_at(const pipe_worker *w, const pipe_render_req *req, size_t k0, int set, batch *bt) {
    size_t end = req->first + req->count, left = end - k0;
    bt->k0 = k0;
    bt->n = (int)(left < (size_t)w->cfg.max_batch ? left : (size_t)w->cfg.max_batch);
    bt->set = set;
}

static int cancelled(const pipe_render_req *req, size_t k0, ls_err *err) {
    if (req->cancel && atomic_load(req->cancel))
        return ls_fail(err, LS_ECANCELLED, "render cancelled at frame %zu", k0);
    return 0;
}

/* Batch after batch: prepare, run, composite. */
static int render_serial(pipe_worker *w, const pipe_render_req *req, pipe_sink_fn sink, void *sink_ctx,
                         pipe_timings *t, ls_err *err) {
    size_t end = req->first + req->count;
    batch bt;
    for (size_t k0 = req->first; k0 < end; k0 += (size_t)w->cfg.max_batch) {
        if (cancelled(req, k0, err)) return -1;
        batch_at(w, req, k0, 0, &bt);
        if (batch_prepare(w, req, &bt, t, err) != 0) return -1;
        uint64_t t1 = pipe_now_ns();
        if (ort_binding_run(w->unet_binding, bt.n, err) != 0) return ls_wrap(err, "frames from %zu", k0);
        t->unet_ns += pipe_now_ns() - t1;
        if (batch_finish(w, req, &bt, sink, sink_ctx, t, err) != 0) return -1;
    }
    return 0;
}

/* Pipelined: while the runner computes batch i in one slot set, this thread prepares batch i+1 in
 * the other, then, once batch i+1 runs, composites batch i. Frames still reach the sink in order
 * and from this thread. unet_ns counts the runs' own time (they overlap the rest). */
static int render_pipelined(pipe_worker *w, const pipe_render_req *req, pipe_sink_fn sink, void *sink_ctx,
                            pipe_timings *t, ls_err *err) {
    size_t end = req->first + req->count;
    batch cur, next;
    uint64_t run_ns = 0;
    batch_at(w, req, req->first, 0, &cur);
    if (cancelled(req, cur.k0, err) || batch_prepare(w, req, &cur, t, err) != 0) return -1;
    pipe_runner_start(w->runner, pipe_worker_unet_binding(w, cur.set), cur.n);
    for (;;) {
        size_t k1 = cur.k0 + (size_t)cur.n;
        int more = k1 < end;
        int rc = 0;
        if (more) {
            batch_at(w, req, k1, !cur.set, &next);
            rc = cancelled(req, k1, err) ? -1 : batch_prepare(w, req, &next, t, err);
        }
        /* The run must end before anything returns: it uses the worker's buffers. */
        ls_err run_err = {0};
        int run_rc = pipe_runner_wait(w->runner, &run_ns, &run_err);
        t->unet_ns += run_ns;
        if (rc != 0) return -1;
        if (run_rc != 0) {
            if (err) *err = run_err;
            return ls_wrap(err, "frames from %zu", cur.k0);
        }
        if (more) pipe_runner_start(w->runner, pipe_worker_unet_binding(w, next.set), next.n);
        rc = batch_finish(w, req, &cur, sink, sink_ctx, t, err);
        if (rc != 0) {
            if (more) pipe_runner_wait(w->runner, NULL, NULL);
            return -1;
        }
        if (!more) return 0;
        cur = next;
    }
}

int pipe_render(pipe_worker *w, const pipe_render_req *req, pipe_sink_fn sink, void *sink_ctx,
                pipe_timings *t, ls_err *err) {
    if (render_check(w, req, err) != 0) return -1;
    /* With a runner every UNet run happens on it, a single batch too: ORT's CUDA provider keeps
     * captured graphs per thread, so runs from two threads would capture every graph twice. */
    if (w->runner) return render_pipelined(w, req, sink, sink_ctx, t, err);
    return render_serial(w, req, sink, sink_ctx, t, err);
}
