/* registry_priv.h - the registry's structures, shared by registry.c (avatars) and
 * registry_models.c (the model cache). Not for other files: they use registry.h. */
#ifndef LS_SRV_REGISTRY_PRIV_H
#define LS_SRV_REGISTRY_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/registry.h"

struct reg_model {
    char *path;
    ort_role role;
    int device;        /* CUDA ordinal it runs on; -1 on the CPU */
    ort_model *m;
    size_t bytes;
    int loading;
    int avatar_refs;   /* loaded avatars using it: its bytes are in total_bytes while > 0 */
    int worker_refs;   /* workers bound to it */
};

enum { ENTRY_UNLOADED, ENTRY_LOADING, ENTRY_LOADED };

struct reg_entry {
    char id[REG_ID_MAX + 1];
    const srv_model_cfg *mcfg; /* `models:` entry, or NULL: package in dir */
    char *dir;
    int state;
    avatar *av;
    struct pipe_avcache *prepared; /* built with av, outside the lock */
    struct pipe_jpeg_set *jpeg;
    reg_model *encoder, *unet;
    int device;                /* GPU it was placed on while loading or loaded; -1: CPU or not yet */
    size_t av_bytes;               /* avatar + both caches */
    int refs;                  /* leases held */
    int unload_pending;
    uint64_t requests, frames, render_ns, infer_ns, last_tick;
    int64_t last_used_ms;
    double load_ms;
    int n_frames, width, height;
};

struct reg_registry {
    reg_cfg cfg;
    char ep_note[1024];        /* why CUDA fell back to the CPU, or "" */
    char *root_real;           /* realpath of avatars_root, or NULL when it does not exist */
    ort_runtime *rt;
    pthread_mutex_t mu;
    pthread_cond_t cond;       /* a load finished (avatar or model) */
    reg_entry **entries;
    int n_entries, cap_entries;
    reg_model **models;
    int n_models, cap_models;
    uint64_t tick;
    size_t total_bytes;        /* under mu; mirrored in the atomics for health */
    atomic_int loaded_pub;
    atomic_size_t total_pub;
};

/* device: CUDA ordinal, or -1 for the CPU. */
reg_model *reg_model_acquire(reg_registry *r, const char *path, ort_role role, int device, ls_err *err);
/* Where a new avatar's models go: -1 (CPU) unless CUDA is configured (and the `models:` entry mc,
 * which may be NULL, does not say cpu); then the configured GPU with the fewest avatars placed on
 * it, loaded or still loading (so concurrent loads spread; the first listed on a tie). */
int reg_model_place(const reg_registry *r, const srv_model_cfg *mc);
void reg_model_release_avatar(reg_registry *r, reg_model *m);
void reg_model_release_worker(reg_registry *r, reg_model *m);
void reg_model_free_all(reg_registry *r);

#endif
