/* handlers_v1.c - lipsync.v1.LipSync: Render through the pipeline, avatar management and stats.
 * Errors are gRPC status codes (docs/api.md). */
#include <string.h>

#include "image/imgfile.h"
#include "lipsync/v1/lipsync.pb-c.h"
#include "server/app_priv.h"
#include "server/server.h"

/* Collects the rendered frames into the reply, in the worker arena. */
typedef struct v1_sink {
    srv_request *req;
    app_worker *w;
    val_output output;
    pipe_jpeg_set *jpeg;     /* the avatar's backgrounds (lease) */
    int quality;
    int64_t first;
    Lipsync__V1__Frame *frames;
    Lipsync__V1__Frame **ptrs;
    Lipsync__V1__Box *boxes;
    size_t n, bytes, max_bytes;
} v1_sink;

static int v1_sink_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    v1_sink *s = ctx;
    int why = srv_request_cancelled(s->req);
    if (why)
        return ls_fail(err, LS_ECANCELLED, "%s after %zu frames", why == 2 ? "deadline exceeded" : "cancelled", s->n);
    const uint8_t *jpg = NULL;
    size_t len;
    int w = f->width, h = f->height;
    if (s->output == VAL_OUT_JPEG) {
        if (pipe_jpeg_encode(s->w->jpeg, s->jpeg, f, s->quality, &jpg, &len, err) != 0) return -1;
    } else {
        if (s->output == VAL_OUT_FACE_PATCH) {
            w = box_width(f->box);
            h = box_height(f->box);
        }
        len = (size_t)w * h * 3;
    }
    if (len > s->max_bytes - s->bytes)
        return ls_fail(err, LS_ENOMEM, "the reply would exceed the %zu MiB message limit after %zu frames; "
                       "ask for fewer (max_frames) or JPEG", s->max_bytes >> 20, s->n);
    uint8_t *data = arena_alloc(s->req->arena, len, 16);
    if (!data) return ls_fail(err, LS_ENOMEM, "reply does not fit the worker arena after %zu frames", s->n);
    if (jpg) memcpy(data, jpg, len);
    else if (s->output == VAL_OUT_RAW_RGB24) img_bgr_to_rgb(f->bgr, f->stride, w, h, data);
    else img_bgr_to_rgb(f->bgr + (size_t)f->box.y1 * f->stride + (size_t)f->box.x1 * 3, f->stride, w, h, data);
    s->bytes += len;
    Lipsync__V1__Frame *fr = &s->frames[s->n];
    lipsync__v1__frame__init(fr);
    fr->index = s->first + (int64_t)f->index;
    fr->avatar_frame = f->avatar_frame;
    fr->data = (ProtobufCBinaryData){.len = len, .data = data};
    fr->width = w;
    fr->height = h;
    if (s->output == VAL_OUT_FACE_PATCH) {
        Lipsync__V1__Box *b = &s->boxes[s->n];
        lipsync__v1__box__init(b);
        b->x1 = f->box.x1, b->y1 = f->box.y1, b->x2 = f->box.x2, b->y2 = f->box.y2;
        fr->box = b;
    }
    s->ptrs[s->n++] = fr;
    return 0;
}

/* What the sink reads of each frame: JPEG the spliced segments, a face patch its box. */
static int v1_sink_region(void *ctx, const pipe_frame *f, ls_box *need, ls_err *err) {
    v1_sink *s = ctx;
    if (s->output == VAL_OUT_JPEG) return pipe_jpeg_region(s->jpeg, f, s->quality, need, err);
    *need = f->box;
    return 0;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* Everything after the avatar is leased; the caller releases it. */
static int v1_render_leased(app *a, srv_request *req, srv_response *resp, const val_render *v,
                            const reg_lease *lease, reg_use *use, uint64_t t0) {
    app_worker *w = req->worker_state;
    ls_err err = {0};
    size_t n_frames;
    uint64_t ta = pipe_now_ns();
    if (reg_bind_worker(a->reg, &w->held, lease, w->pw, &err) != 0 ||
        app_clip_features(w, v->audio, v->audio_bytes, v->format, v->sample_rate, 0, &n_frames, &err) != 0)
        return app_fail(req, resp, &err);
    uint64_t audio_ns = pipe_now_ns() - ta;
    size_t count = v->frames < n_frames ? v->frames : n_frames;
    v1_sink s = {.req = req, .w = w, .output = v->output, .jpeg = lease->jpeg, .quality = v->jpeg_quality,
                 .first = v->first_frame,
                 .max_bytes = resp->max_reply - (resp->max_reply >> 6) /* room for the framing */};
    s.frames = arena_array(req->arena, Lipsync__V1__Frame, count);
    s.ptrs = arena_array(req->arena, Lipsync__V1__Frame *, count);
    s.boxes = arena_array(req->arena, Lipsync__V1__Box, count);
    if (!s.frames || !s.ptrs || !s.boxes)
        return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "%zu frames do not fit the worker arena", count);
    pipe_render_req rr = {.av = lease->av, .feats = w->feats, .n_frames = n_frames, .first = 0, .count = count,
                          .start_frame = v->first_frame, .cancel = srv_request_cancel_flag(req),
                          .prepared = lease->prepared,
                          .region = v->output == VAL_OUT_RAW_RGB24 ? NULL : v1_sink_region};
    pipe_timings t = {0};
    if (pipe_render(w->pw, &rr, v1_sink_frame, &s, &t, &err) != 0) return app_fail(req, resp, &err);
    use->frames = count;
    use->infer_ns = t.unet_ns;
    Lipsync__V1__Timings tm = LIPSYNC__V1__TIMINGS__INIT;
    tm.audio_ms = (float)ms(audio_ns);
    tm.prepare_ms = (float)ms(t.prep_ns);
    tm.inference_ms = (float)ms(t.unet_ns);
    tm.composite_ms = (float)ms(t.paste_ns);
    tm.encode_ms = (float)ms(t.sink_ns);
    tm.queue_ms = (float)ms((uint64_t)srv_request_queue_ns(req));
    tm.avatar_load_ms = lease->loaded_now ? (float)lease->load_ms : 0.0f;
    use->render_ns = pipe_now_ns() - t0;
    tm.total_ms = (float)ms(use->render_ns);
    Lipsync__V1__RenderResponse out = LIPSYNC__V1__RENDER_RESPONSE__INIT;
    out.n_frames = count;
    out.frames = s.ptrs;
    out.timings = &tm;
    out.frame_width = lease->av->width;
    out.frame_height = lease->av->height;
    srv_response_note(resp, "avatar=%s frames=%zu audio_ms=%.1f prep_ms=%.1f unet_ms=%.1f paste_ms=%.1f "
                      "encode_ms=%.1f%s", v->avatar_id, count, tm.audio_ms, tm.prepare_ms, tm.inference_ms,
                      tm.composite_ms, tm.encode_ms, lease->loaded_now ? " loaded" : "");
    return srv_response_pack(resp, &out.base);
}

int app_v1_render(void *ctx, srv_request *req, srv_response *resp) {
    app *a = ctx;
    uint64_t t0 = pipe_now_ns();
    Lipsync__V1__RenderRequest *in = (Lipsync__V1__RenderRequest *)srv_request_unpack(
        req, &lipsync__v1__render_request__descriptor, resp);
    if (!in) return -1;
    val_render v;
    ls_err err = {0};
    reg_lease lease;
    if (val_render_request(in, &a->lim, a->cfg->jpeg_quality, &v, &err) != 0 ||
        reg_acquire(a->reg, v.avatar_id, &lease, &err) != 0) {
        srv_response_note(resp, "avatar=%.64s", in->avatar_id);
        return srv_response_fail_err(resp, &err);
    }
    reg_use use = {0};
    int rc = v1_render_leased(a, req, resp, &v, &lease, &use, t0);
    reg_release(a->reg, &lease, &use);
    return rc;
}

static void info_to_pb(const reg_info *i, Lipsync__V1__AvatarInfo *o, char *id) {
    lipsync__v1__avatar_info__init(o);
    memcpy(id, i->id, sizeof i->id);
    o->avatar_id = id;
    o->loaded = i->loaded;
    o->num_frames = i->frames;
    o->frame_width = i->width;
    o->frame_height = i->height;
    o->memory_bytes = (int64_t)i->memory_bytes;
    o->request_count = (int64_t)i->requests;
    o->frames_rendered = (int64_t)i->frames_rendered;
    o->avg_render_ms = i->requests ? (float)((double)i->render_ns / 1e6 / (double)i->requests) : 0.0f;
    o->last_used_unix_ms = i->last_used_ms;
    o->in_use = i->in_use;
    o->gpu_id = i->gpu_id;
}

typedef struct v1_list {
    ls_arena *arena;
    Lipsync__V1__AvatarInfo **items;
    size_t n;
} v1_list;

static void v1_list_add(void *ctx, const reg_info *info) {
    v1_list *l = ctx;
    if (l->n == APP_LIST_MAX) return;
    Lipsync__V1__AvatarInfo *o = arena_array(l->arena, Lipsync__V1__AvatarInfo, 1);
    char *id = arena_alloc(l->arena, sizeof info->id, 1);
    if (!o || !id) return;
    info_to_pb(info, o, id);
    l->items[l->n++] = o;
}

int app_v1_list_avatars(void *ctx, srv_request *req, srv_response *resp) {
    app *a = ctx;
    Lipsync__V1__ListAvatarsRequest *in = (Lipsync__V1__ListAvatarsRequest *)srv_request_unpack(
        req, &lipsync__v1__list_avatars_request__descriptor, resp);
    if (!in) return -1;
    v1_list l = {.arena = req->arena, .items = arena_array(req->arena, Lipsync__V1__AvatarInfo *, APP_LIST_MAX)};
    if (!l.items) return srv_response_fail(resp, GRPC_STATUS_RESOURCE_EXHAUSTED, "worker arena exhausted");
    reg_list(a->reg, in->loaded_only, v1_list_add, &l);
    Lipsync__V1__ListAvatarsResponse out = LIPSYNC__V1__LIST_AVATARS_RESPONSE__INIT;
    out.n_avatars = l.n;
    out.avatars = l.items;
    return srv_response_pack(resp, &out.base);
}

int app_v1_load_avatar(void *ctx, srv_request *req, srv_response *resp) {
    app *a = ctx;
    Lipsync__V1__LoadAvatarRequest *in = (Lipsync__V1__LoadAvatarRequest *)srv_request_unpack(
        req, &lipsync__v1__load_avatar_request__descriptor, resp);
    if (!in) return -1;
    reg_info info;
    double load_ms;
    bool already;
    ls_err err = {0};
    srv_response_note(resp, "avatar=%.64s", in->avatar_id);
    if (reg_load(a->reg, in->avatar_id, &info, &load_ms, &already, &err) != 0)
        return srv_response_fail_err(resp, &err);
    Lipsync__V1__AvatarInfo ai;
    char id[REG_ID_MAX + 1];
    info_to_pb(&info, &ai, id);
    Lipsync__V1__LoadAvatarResponse out = LIPSYNC__V1__LOAD_AVATAR_RESPONSE__INIT;
    out.avatar = &ai;
    out.load_ms = (float)load_ms;
    out.already_loaded = already;
    srv_response_note(resp, already ? "already_loaded" : "load_ms=%.1f", load_ms);
    return srv_response_pack(resp, &out.base);
}

int app_v1_unload_avatar(void *ctx, srv_request *req, srv_response *resp) {
    app *a = ctx;
    Lipsync__V1__UnloadAvatarRequest *in = (Lipsync__V1__UnloadAvatarRequest *)srv_request_unpack(
        req, &lipsync__v1__unload_avatar_request__descriptor, resp);
    if (!in) return -1;
    bool deferred;
    ls_err err = {0};
    srv_response_note(resp, "avatar=%.64s", in->avatar_id);
    if (reg_unload(a->reg, in->avatar_id, &deferred, &err) != 0) return srv_response_fail_err(resp, &err);
    Lipsync__V1__UnloadAvatarResponse out = LIPSYNC__V1__UNLOAD_AVATAR_RESPONSE__INIT;
    out.deferred = deferred;
    if (deferred) srv_response_note(resp, "deferred");
    return srv_response_pack(resp, &out.base);
}
