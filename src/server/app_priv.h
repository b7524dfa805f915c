/* app_priv.h - lipsyncd's application (srv_app.h) shared by app.c (creation, per-worker state,
 * health, method table) and the handlers of both APIs (handlers_v1.c, handlers_compat.c).
 *
 * Per worker (app_worker, made once before the server starts): the pipeline context (max batch
 * and max frame size from the config), the spliced-JPEG encoder, the PCM converter, and the PCM, mel, feature and UNet-audio
 * buffers sized for the longest accepted audio (capacity.max_audio_seconds), all carved from one
 * arena, so a warm request allocates nothing in our code: replies are built from arena-allocated
 * protobuf-c structs and packed once by the transport. */
#ifndef LS_SRV_APP_PRIV_H
#define LS_SRV_APP_PRIV_H

#include <stdint.h>

#include "audio/pcm.h"
#include "common/arena.h"
#include "pipeline/encode.h"
#include "pipeline/render.h"
#include "server/cpu_plan.h"
#include "server/registry.h"
#include "server/srv_app.h"
#include "server/validate.h"

typedef struct app {
    const srv_config *cfg;
    reg_registry *reg;
    val_limits lim;
    size_t max_samples;      /* 16 kHz samples of the longest accepted audio */
    size_t max_frames;       /* video frames those give */
    struct app_stream *stream; /* live-session schedulers (stream_models.h) */
    int pipeline;              /* workers overlap the UNet with prep and composite (render.h) */
    srv_cpu_plan cpus;       /* onnx.thread_affinity: which thread runs where */
    char inference[224];     /* srv_app.inference */
} app;

typedef struct app_worker {
    pipe_worker *pw;
    pcm_converter *pcm;
    pipe_jpeg_enc *jpeg;     /* spliced JPEG output (the lease's backgrounds), full-encode fallback */
    reg_binding held;        /* models this worker's bindings use (kept alive by the registry) */
    ls_arena arena;
    size_t max_samples;
    float *pcm_buf;          /* max_samples */
    float *mel;              /* pipe_clip_mel_floats(max_samples) */
    float *feats;            /* pipe_clip_feat_floats(max_samples) */
    float *audio_in;         /* VAL_COMPOSITE_MAX_BATCH UNet audio blocks (compat API) */
    float *image_in;         /* VAL_COMPOSITE_MAX_BATCH UNet images, aligned copy (compat API) */
} app_worker;

/* Audio of one request at 16 kHz -> the clip's encoder features in w->feats. The worker must
 * already be bound to the avatar's models. Audio shorter than min_samples (at 16 kHz) is padded
 * with silence up to it (0: no padding). *n_frames gets the clip's video frames. */
int app_clip_features(app_worker *w, const void *bytes, size_t n_bytes, pcm_format fmt, int rate,
                      size_t min_samples, size_t *n_frames, ls_err *err);

/* Maps an error to a gRPC status, turning LS_ECANCELLED into CANCELLED or DEADLINE_EXCEEDED as
 * the call says. */
int app_fail(srv_request *req, srv_response *resp, const ls_err *err);

/* The handlers (srv_handler_fn). */
int app_v1_render(void *ctx, srv_request *req, srv_response *resp);
int app_v1_list_avatars(void *ctx, srv_request *req, srv_response *resp);
int app_v1_load_avatar(void *ctx, srv_request *req, srv_response *resp);
int app_v1_unload_avatar(void *ctx, srv_request *req, srv_response *resp);
struct srv_stream;
int app_v1_stream(void *ctx, struct srv_stream *st); /* stream_handler.c */
int app_compat_infer(void *ctx, srv_request *req, srv_response *resp);
int app_compat_list_models(void *ctx, srv_request *req, srv_response *resp);
int app_compat_load_model(void *ctx, srv_request *req, srv_response *resp);
int app_compat_unload_model(void *ctx, srv_request *req, srv_response *resp);
int app_compat_get_model_stats(void *ctx, srv_request *req, srv_response *resp);

/* Most entries ListAvatars / ListModels return (they are built in the worker arena). */
#define APP_LIST_MAX 4096

#endif
