/* ort_model.h - one ONNX model (audio encoder or UNet) as an ORT session, and per-worker bindings.
 *
 * ort_model_load() opens the file, checks its inputs/outputs against the role (names, float
 * element type, rank, every non-batch dimension; LS_EMODEL naming the file and the offending
 * tensor otherwise) and records whether the batch dimension is fixed (N) or dynamic. A model is
 * shared read-only by all workers (ORT sessions are thread-safe to Run); counters are atomic.
 *
 * ort_binding: per worker, created once over caller-owned float buffers sized for `max_batch`
 * items (NCHW, items back to back); it owns only ORT tensor views of them (and, for a model with
 * a fixed batch N > 1, one N-item staging area for a final partial chunk). ort_binding_run()
 * allocates nothing in our code: it runs the model on the first `batch` items, in chunks when
 * the model's batch is fixed. The caller owns the buffers and must keep them alive and must not
 * touch them during a run. Destroy bindings before their model, models before the runtime. */
#ifndef LS_ORT_MODEL_H
#define LS_ORT_MODEL_H

#include "common/err.h"
#include "infer/ort_runtime.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ORT_ROLE_ENCODER, /* mel_spectrogram [B,1,80,16] -> audio_features [B,512] */
    ORT_ROLE_UNET     /* input [B,6,320,320], audio [B,32,16,16] -> output [B,3,320,320] */
} ort_role;

/* Floats per batch item of each tensor, in the order the binding takes them. */
#define ORT_ENC_MEL_ELEMS (1 * 80 * 16)
#define ORT_ENC_FEAT_ELEMS 512
#define ORT_UNET_IMG_ELEMS (6 * 320 * 320)
#define ORT_UNET_AUDIO_ELEMS (32 * 16 * 16)
#define ORT_UNET_OUT_ELEMS (3 * 320 * 320)

int ort_role_input_count(ort_role role);               /* 1 (encoder) or 2 (UNet) */
size_t ort_role_input_elems(ort_role role, int i);     /* floats per item of input i */
size_t ort_role_output_elems(ort_role role);           /* floats per item of the output */
const char *ort_role_name(ort_role role);              /* "audio encoder" / "UNet" */

typedef enum {
    ORT_OPT_DEFAULT = 0, /* = ORT_OPT_ALL */
    ORT_OPT_NONE,
    ORT_OPT_BASIC,
    ORT_OPT_EXTENDED,
    ORT_OPT_ALL
} ort_opt_level;

typedef struct {
    int intra_threads;      /* threads inside one operator; 0: ORT's default (one per core) */
    int inter_threads;      /* threads across operators; 0: ORT's default */
    ort_opt_level opt_level;
    int no_spin;            /* 1: worker threads sleep instead of spinning between operators
                               (frees the cores for the rest of the pipeline) */
    /* Optional cache of the optimised graph. If the file exists and is newer than the model it is
     * loaded with optimisation off (faster start); otherwise the model is optimised and saved
     * there. A cache that fails to load is ignored and rewritten. NULL: no cache. */
    const char *optimized_path;
} ort_model_opts;

typedef struct ort_model ort_model;

/* Where the optimised graph of model_path is cached inside dir: dir/<name>-<hash of its real
 * path>.ort.onnx. Returns 0, or -1 when dir is NULL/empty, the model does not exist or out is too
 * small. The cache is only valid on the machine that wrote it (ORT's layout choices are
 * hardware-specific), which is why it lives in a local cache folder, never beside the model. */
int ort_cache_path(const char *dir, const char *model_path, char *out, size_t cap);

/* opts may be NULL (all defaults). Errors: LS_ENOTFOUND (no file), LS_EFORMAT (not a model),
 * LS_EMODEL (ORT refused it or its inputs/outputs do not fit the role), LS_ENOMEM. */
ort_model *ort_model_load(ort_runtime *rt, const char *path, ort_role role, const ort_model_opts *opts,
                          ls_err *err);
void ort_model_destroy(ort_model *m); /* NULL is fine */

ort_role ort_model_role(const ort_model *m);
const char *ort_model_path(const ort_model *m);
int ort_model_batch(const ort_model *m); /* the model's fixed batch size, or 0 when dynamic */

/* Best estimate of the memory the model holds: the model file's size, since the weights (kept
 * once by ORT, pre-packed copies roughly replacing the originals) dominate. Activation memory is
 * per run and per binding, and not counted. */
size_t ort_model_bytes(const ort_model *m);

typedef struct {
    uint64_t runs;    /* ort_binding_run calls that succeeded */
    uint64_t items;   /* batch items they processed */
    uint64_t run_ns;  /* wall time spent inside ORT's Run, summed over all workers */
    uint64_t failures;
} ort_model_stats;

void ort_model_stats_get(const ort_model *m, ort_model_stats *out);

typedef struct ort_binding ort_binding;

/* inputs[i] holds max_batch * ort_role_input_elems(role, i) floats, output max_batch *
 * ort_role_output_elems(role). max_batch 1 .. 4096. */
ort_binding *ort_binding_create(ort_model *m, int max_batch, float *const *inputs, float *output,
                                ls_err *err);
void ort_binding_destroy(ort_binding *b); /* NULL is fine */
int ort_binding_max_batch(const ort_binding *b);

/* Runs the model on items 0 .. batch-1 of the bound buffers (1 <= batch <= max_batch); the
 * output items are written in place. Errors: LS_EINVAL (batch out of range), LS_EMODEL. */
int ort_binding_run(ort_binding *b, int batch, ls_err *err);

#endif
