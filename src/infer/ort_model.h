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
#include "infer/ort_ep.h"
#include "infer/ort_runtime.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ORT_ROLE_ENCODER, /* mel_spectrogram [B,1,80,16] -> audio_features [B,512] */
    ORT_ROLE_UNET,    /* input [B,6,320,320], audio [B,32,16,16] -> output [B,3,320,320] */
    ORT_ROLE_UNET_U8, /* a UNet wrapped at load (onnx_wrap.h): crop_u8 uint8 [B,328,328,3],
                         audio [B,32,16,16] -> output_u8 uint8 [B,320,320,3]; never asked for
                         directly: load ORT_ROLE_UNET with opts.uint8_io */
    ORT_ROLE_COUNT
} ort_role;

/* Floats per batch item of each tensor, in the order the binding takes them. */
#define ORT_ENC_MEL_ELEMS (1 * 80 * 16)
#define ORT_ENC_FEAT_ELEMS 512
#define ORT_UNET_IMG_ELEMS (6 * 320 * 320)
#define ORT_UNET_AUDIO_ELEMS (32 * 16 * 16)
#define ORT_UNET_OUT_ELEMS (3 * 320 * 320)

int ort_role_input_count(ort_role role);               /* 1 (encoder) or 2 (UNet) */
size_t ort_role_input_elems(ort_role role, int i);     /* elements per item of input i */
size_t ort_role_output_elems(ort_role role);           /* elements per item of the output */
size_t ort_role_input_bytes(ort_role role, int i);     /* bytes per item of input i */
size_t ort_role_output_bytes(ort_role role);           /* bytes per item of the output */
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
    /* Execution provider; NULL = CPU. CUDA models never use optimized_path (the optimised graph
     * holds provider-specific nodes). */
    const ort_ep_cfg *ep;
    /* UNet only: wrap the model at load (onnx_wrap.h) so it takes and returns uint8 images; the
     * model's role becomes ORT_ROLE_UNET_U8. The file on disk is not touched. */
    int uint8_io;
    /* CPU sessions: the CPUs of the intra-op pool's threads (ort_affinity.h), one per pool thread,
     * so n_pool_cpus must be intra_threads - 1 (LS_EINVAL otherwise; intra_threads must be set).
     * NULL: ORT places them. The thread that calls Run is the caller's to pin. */
    const int *pool_cpus;
    int n_pool_cpus;
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

ort_role ort_model_role(const ort_model *m); /* ORT_ROLE_UNET_U8 for a UNet loaded with uint8_io */
const char *ort_model_path(const ort_model *m);
int ort_model_batch(const ort_model *m); /* the model's fixed batch size, or 0 when dynamic */

/* Best estimate of the memory the model holds: the model file's size, since the weights (kept
 * once by ORT, pre-packed copies roughly replacing the originals) dominate. Activation memory is
 * per run and per binding, and not counted. */
size_t ort_model_bytes(const ort_model *m);

ort_ep_kind ort_model_ep(const ort_model *m);
int ort_model_device(const ort_model *m);          /* CUDA ordinal, -1 on the CPU */
const char *ort_model_ep_desc(const ort_model *m); /* e.g. "cpu", "cuda:0 (EP-device API, ...)" */

/* GPU memory held for this model: what ONNX Runtime's allocator holds for its session, from its
 * statistics ("TotalAllocated" of the session's device allocator; 0 when ORT keeps none), plus the
 * device copies of the tensors of its live bindings (their exact sizes). 0 without device memory
 * (on the CPU). */
size_t ort_model_device_bytes(const ort_model *m);

/* Host memory the session's CPU arena holds ("TotalAllocated"). CPU sessions share the runtime's
 * one arena (ort_runtime.h), so for them this is every CPU session's total, not this model's
 * share; a CUDA session's host arena is its own. */
size_t ort_model_host_bytes(const ort_model *m);

typedef struct {
    uint64_t runs;    /* ort_binding_run calls that succeeded */
    uint64_t items;   /* batch items they processed */
    uint64_t run_ns;  /* wall time spent inside ORT's Run, summed over all workers */
    uint64_t failures;
} ort_model_stats;

void ort_model_stats_get(const ort_model *m, ort_model_stats *out);

typedef struct ort_binding ort_binding;

/* inputs[i] holds max_batch * ort_role_input_bytes(role, i) bytes, output max_batch *
 * ort_role_output_bytes(role) (float32 tensors, or uint8 for ORT_ROLE_UNET_U8's images).
 * max_batch 1 .. 4096. For a model on CUDA (EP-device API) the binding also owns device copies of
 * every tensor (from ORT's shared device allocator): a run copies the inputs' first `batch` items
 * to the GPU, runs there (with CUDA graphs when enabled, one per batch size) and copies the output
 * back; nothing else crosses the bus. With CUDA graphs, creating a binding that cannot have device
 * tensors fails (LS_EMODEL). A binding is not for concurrent use: one thread runs it at a time. */
ort_binding *ort_binding_create(ort_model *m, int max_batch, void *const *inputs, void *output, ls_err *err);
void ort_binding_destroy(ort_binding *b); /* NULL is fine */
int ort_binding_max_batch(const ort_binding *b);

/* Runs the model on items 0 .. batch-1 of the bound buffers (1 <= batch <= max_batch); the
 * output items are written in place. Errors: LS_EINVAL (batch out of range), LS_EMODEL. */
int ort_binding_run(ort_binding *b, int batch, ls_err *err);

/* For benchmarks: the model alone, on the device copies as they are (no host<->device copies),
 * for a dynamic-batch model on CUDA through the EP-device API; otherwise ort_binding_run. */
int ort_binding_run_resident(ort_binding *b, int batch, ls_err *err);

/* Whether runs go through device copies (the model is on CUDA through the EP-device API). When
 * the device side cannot be set up (ORT offers no GPU allocator or data transfer), the binding
 * still works, on host tensors that ORT copies itself, and ort_binding_device_note() says why. */
int ort_binding_on_device(const ort_binding *b);
const char *ort_binding_device_note(const ort_binding *b); /* "" unless it fell back */

#endif
