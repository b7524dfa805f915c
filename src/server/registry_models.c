/* registry_models.c - the registry's model cache: ONNX sessions by (path, role), shared and
 * reference-counted (registry.h). Two counts keep a model alive: loaded avatars using it (these
 * put its bytes in the registry's total) and workers bound to it. Called with the registry
 * mutex held; loading drops it meanwhile (other callers of the same model wait on the cond). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/cpu_plan.h"
#include "server/registry_priv.h"

static reg_model *model_find(reg_registry *r, const char *path, ort_role role, int device) {
    for (int i = 0; i < r->n_models; i++) {
        reg_model *m = r->models[i];
        if (m->role == role && m->device == device && !strcmp(m->path, path)) return m;
    }
    return NULL;
}

int reg_model_place(const reg_registry *r, const srv_model_cfg *mc) {
    if (r->cfg.ep.kind != ORT_EP_CUDA || (mc && mc->provider == ORT_EP_CPU) || r->cfg.n_cuda_devices < 1) return -1;
    int best = r->cfg.cuda_devices[0], best_n = -1;
    for (int d = 0; d < r->cfg.n_cuda_devices; d++) {
        int dev = r->cfg.cuda_devices[d], n = 0;
        for (int i = 0; i < r->n_entries; i++)
            n += r->entries[i]->state != ENTRY_UNLOADED && r->entries[i]->device == dev;
        if (best_n < 0 || n < best_n) best = dev, best_n = n;
    }
    return best;
}

static void model_remove(reg_registry *r, reg_model *m) {
    for (int i = 0; i < r->n_models; i++)
        if (r->models[i] == m) {
            r->models[i] = r->models[--r->n_models];
            break;
        }
    ort_model_destroy(m->m);
    free(m->path);
    free(m);
}

reg_model *reg_model_acquire(reg_registry *r, const char *path, ort_role role, int device, ls_err *err) {
    for (;;) {
        reg_model *m = model_find(r, path, role, device);
        if (m && m->loading) {
            pthread_cond_wait(&r->cond, &r->mu);
            continue;
        }
        if (m) {
            if (m->avatar_refs++ == 0) r->total_bytes += m->bytes;
            return m;
        }
        break;
    }
    if (r->n_models == r->cap_models) {
        int cap = r->cap_models ? 2 * r->cap_models : 8;
        reg_model **grown = realloc(r->models, sizeof *grown * (size_t)cap);
        if (!grown) return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
        r->models = grown;
        r->cap_models = cap;
    }
    reg_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    }
    m->role = role;
    m->device = device;
    m->loading = 1;
    r->models[r->n_models++] = m;
    pthread_mutex_unlock(&r->mu);
    ort_ep_cfg ep = r->cfg.ep;
    ep.kind = device >= 0 ? ORT_EP_CUDA : ORT_EP_CPU;
    ep.device_id = device;
    /* The encoder's batch follows each clip's length: a graph per size would pile up; only the
     * UNet, whose batches are the configured sizes, replays CUDA graphs. */
    if (role != ORT_ROLE_UNET) ep.cuda_graph = 0;
    ort_model_opts opts = {.intra_threads = r->cfg.intra_op_threads, .no_spin = 1, .ep = &ep,
                           .uint8_io = role == ORT_ROLE_UNET && r->cfg.uint8_io};
    int pool[ORT_AFF_MAX_CPUS];
    int n_pool = opts.intra_threads - 1;
    if (r->cfg.cpu_plan && ep.kind == ORT_EP_CPU && n_pool >= 1 && n_pool <= ORT_AFF_MAX_CPUS &&
        srv_cpu_plan_take(r->cfg.cpu_plan, n_pool, pool) >= 0)
        opts.pool_cpus = pool, opts.n_pool_cpus = n_pool;
    char cache[SRV_CFG_PATH_MAX + 128];
    if (r->cfg.ort_cache_dir && *r->cfg.ort_cache_dir) {
        mkdir(r->cfg.ort_cache_dir, 0755); /* may exist; without it the cache is simply not written */
        if (ort_cache_path(r->cfg.ort_cache_dir, path, cache, sizeof cache) == 0) opts.optimized_path = cache;
    }
    ort_model *om = ort_model_load(r->rt, path, role, &opts, err);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cond);
    if (!om) {
        model_remove(r, m);
        return NULL;
    }
    m->m = om;
    m->bytes = ort_model_bytes(om);
    m->loading = 0;
    m->avatar_refs = 1;
    r->total_bytes += m->bytes;
    return m;
}

void reg_model_release_avatar(reg_registry *r, reg_model *m) {
    if (!m) return;
    if (--m->avatar_refs == 0) {
        r->total_bytes -= m->bytes;
        if (m->worker_refs == 0) model_remove(r, m);
    }
}

void reg_model_release_worker(reg_registry *r, reg_model *m) {
    if (m && --m->worker_refs == 0 && m->avatar_refs == 0) model_remove(r, m);
}

void reg_model_free_all(reg_registry *r) {
    while (r->n_models) model_remove(r, r->models[r->n_models - 1]);
    free(r->models);
}

ort_model *reg_model_ort(const reg_model *m) { return m ? m->m : NULL; }
int reg_model_device(const reg_model *m) { return m ? m->device : -1; }
