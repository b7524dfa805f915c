/* registry.c - avatars by id: resolution, on-demand loading outside the lock, leases, eviction,
 * unload, listing (registry.h). The model cache is in registry_models.c. */
#include "server/registry.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pipeline/avatar_cache.h"
#include "pipeline/encode.h"
#include "pipeline/render.h"
#include "server/registry_priv.h"
#include "server/validate.h"

static int64_t unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void publish(reg_registry *r) {
    int loaded = 0;
    for (int i = 0; i < r->n_entries; i++) loaded += r->entries[i]->state == ENTRY_LOADED;
    atomic_store(&r->loaded_pub, loaded);
    atomic_store(&r->total_pub, r->total_bytes);
}

/* The start-up check of reg_create (see registry.h). */
static int check_cuda(reg_registry *r, ls_err *err) {
    if (r->cfg.ep.kind != ORT_EP_CUDA) return 0;
    ls_err why = {0};
    int n = ort_ep_cuda_devices(r->rt, r->cfg.ep.provider_lib, r->cfg.ep.api, &why);
    for (int i = 0; n > 0 && i < r->cfg.n_cuda_devices; i++)
        if (r->cfg.cuda_devices[i] >= n)
            n = ls_fail(&why, LS_EMODEL, "onnx.cuda.device_ids lists GPU %d but ONNX Runtime sees %d GPU%s",
                        r->cfg.cuda_devices[i], n, n == 1 ? "" : "s");
    if (n > 0) return 0;
    if (!r->cfg.fallback_cpu) return ls_fail(err, why.code, "onnx.provider cuda: %s", why.msg);
    snprintf(r->ep_note, sizeof r->ep_note, "CUDA unavailable, running on the CPU (onnx.fallback: cpu): %s",
             why.msg);
    r->cfg.ep.kind = ORT_EP_CPU;
    r->cfg.uint8_io = false;
    return 0;
}

reg_registry *reg_create(const reg_cfg *cfg, ls_err *err) {
    reg_registry *r = calloc(1, sizeof *r);
    if (!r) return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->root_real = realpath(cfg->avatars_root, NULL); /* missing root: only `models:` ids exist */
    if (!(r->rt = ort_runtime_create(NULL, err)) || check_cuda(r, err) != 0) {
        reg_destroy(r);
        return NULL;
    }
    return r;
}

const char *reg_ep_note(const reg_registry *r) { return r->ep_note; }
ort_ep_kind reg_ep(const reg_registry *r) { return r->cfg.ep.kind; }
bool reg_uint8_io(const reg_registry *r) { return r->cfg.uint8_io; }

size_t reg_gpu_bytes(reg_registry *r, int dev) {
    size_t bytes = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_models; i++)
        if (r->models[i]->m && r->models[i]->device == dev) bytes += ort_model_device_bytes(r->models[i]->m);
    pthread_mutex_unlock(&r->mu);
    return bytes;
}

size_t reg_host_bytes(reg_registry *r) {
    size_t shared = 0, own = 0; /* the CPU sessions' one arena; CUDA sessions' host arenas */
    int sharing = ort_runtime_shared_cpu_arena(r->rt);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_models; i++) {
        ort_model *m = r->models[i]->m;
        size_t b = m ? ort_model_host_bytes(m) : 0;
        if (sharing && m && ort_model_ep(m) == ORT_EP_CPU) shared = b > shared ? b : shared;
        else own += b;
    }
    pthread_mutex_unlock(&r->mu);
    return shared + own;
}

void reg_destroy(reg_registry *r) {
    if (!r) return;
    for (int i = 0; i < r->n_entries; i++) {
        reg_entry *e = r->entries[i];
        pipe_jpeg_set_free(e->jpeg);
        pipe_avcache_free(e->prepared);
        avatar_free(e->av);
        free(e->dir);
        free(e);
    }
    free(r->entries);
    reg_model_free_all(r);
    ort_runtime_destroy(r->rt);
    free(r->root_real);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
    free(r);
}

static const srv_model_cfg *config_model(const reg_registry *r, const char *id) {
    for (int i = 0; i < r->cfg.n_models; i++)
        if (!strcmp(r->cfg.models[i].id, id)) return &r->cfg.models[i];
    return NULL;
}

/* avatars_root/<id>, as a real path inside the real root holding a manifest; malloc'd. */
static char *package_dir(const reg_registry *r, const char *id, ls_err *err) {
    if (!r->root_real)
        return ls_fail(err, LS_ENOTFOUND, "no avatar '%s' (avatars_root %s does not exist)", id,
                       r->cfg.avatars_root), NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", r->root_real, id);
    char *real = realpath(path, NULL);
    struct stat st;
    size_t n = strlen(r->root_real);
    if (real && (strncmp(real, r->root_real, n) || real[n] != '/')) {
        free(real);
        return ls_fail(err, LS_EINVAL, "avatar id '%s' leads outside avatars_root", id), NULL;
    }
    if (real) snprintf(path, sizeof path, "%s/manifest.json", real);
    if (!real || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(real);
        return ls_fail(err, LS_ENOTFOUND, "no avatar '%s' in %s or the config's models", id,
                       r->cfg.avatars_root), NULL;
    }
    return real;
}

static reg_entry *entry_find(reg_registry *r, const char *id) {
    for (int i = 0; i < r->n_entries; i++)
        if (!strcmp(r->entries[i]->id, id)) return r->entries[i];
    return NULL;
}

/* The entry of id, created when id names a configured model or a package (mu held). */
static reg_entry *entry_get(reg_registry *r, const char *id, ls_err *err) {
    if (val_avatar_id(id, err)) return NULL;
    reg_entry *e = entry_find(r, id);
    if (e) return e;
    const srv_model_cfg *mc = config_model(r, id);
    char *dir = mc ? NULL : package_dir(r, id, err);
    if (!mc && !dir) return NULL;
    if (r->n_entries == r->cap_entries) {
        int cap = r->cap_entries ? 2 * r->cap_entries : 16;
        reg_entry **grown = realloc(r->entries, sizeof *grown * (size_t)cap);
        if (!grown) { free(dir); return ls_fail(err, LS_ENOMEM, "out of memory"), NULL; }
        r->entries = grown;
        r->cap_entries = cap;
    }
    if (!(e = calloc(1, sizeof *e))) { free(dir); return ls_fail(err, LS_ENOMEM, "out of memory"), NULL; }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->mcfg = mc;
    e->dir = dir;
    e->device = -1;
    r->entries[r->n_entries++] = e;
    return e;
}

/* Reads the avatar's files (no lock held). */
static avatar *entry_read(const reg_registry *r, const reg_entry *e, ls_err *err) {
    avatar *av;
    if (e->mcfg) {
        const srv_model_cfg *m = e->mcfg;
        if (!m->crop_rects_path[0])
            return ls_fail(err, LS_EFORMAT, "models.%s: crop_rects_path is required", m->id), NULL;
        avatar_parts p = {.name = m->id, .frames_dir = m->background_dir[0] ? m->background_dir : NULL,
                          .video = m->source_video[0] ? m->source_video : NULL,
                          .boxes_path = m->crop_rects_path, .unet_path = m->model_path,
                          .encoder_path = r->cfg.audio_encoder, .max_frames = m->num_frames};
        av = avatar_load_parts(&p, err);
    } else {
        av = avatar_load(e->dir, err);
    }
    if (av && (av->width > r->cfg.max_frame_w || av->height > r->cfg.max_frame_h)) {
        ls_fail(err, LS_EFORMAT, "avatar '%s' has %dx%d frames; the workers take at most %dx%d "
                "(capacity.max_frame_width/height)", e->id, av->width, av->height, r->cfg.max_frame_w,
                r->cfg.max_frame_h);
        avatar_free(av);
        return NULL;
    }
    return av;
}

static void entry_unload(reg_registry *r, reg_entry *e) {
    reg_model_release_avatar(r, e->unet);
    reg_model_release_avatar(r, e->encoder);
    pipe_jpeg_set_free(e->jpeg); /* plain free()s: quick enough to do under the lock */
    pipe_avcache_free(e->prepared);
    avatar_free(e->av);
    r->total_bytes -= e->av_bytes;
    e->av = NULL;
    e->prepared = NULL;
    e->jpeg = NULL;
    e->unet = e->encoder = NULL;
    e->device = -1;
    e->av_bytes = 0;
    e->state = ENTRY_UNLOADED;
    e->unload_pending = 0;
}

/* The idle avatar to evict next, by policy; NULL when none may go. */
static reg_entry *victim(reg_registry *r, const reg_entry *keep) {
    reg_entry *best = NULL;
    if (r->cfg.policy == SRV_EVICT_NONE) return NULL;
    for (int i = 0; i < r->n_entries; i++) {
        reg_entry *e = r->entries[i];
        if (e == keep || e->state != ENTRY_LOADED || e->refs) continue;
        if (!best) { best = e; continue; }
        int better = r->cfg.policy == SRV_EVICT_LFU && e->requests != best->requests
                         ? e->requests < best->requests
                         : e->last_tick < best->last_tick;
        if (better) best = e;
    }
    return best;
}

/* Evicts idle avatars until e (its models already counted) fits; LS_ENOMEM when it cannot. */
static int make_room(reg_registry *r, reg_entry *e, ls_err *err) {
    size_t own = e->av_bytes + e->unet->bytes + e->encoder->bytes;
    if (own > r->cfg.max_bytes)
        return ls_fail(err, LS_ENOMEM, "avatar '%s' needs %.1f MiB, more than the whole memory budget "
                       "(%.1f MiB, capacity.max_memory_gb)", e->id, own / 1048576.0, r->cfg.max_bytes / 1048576.0);
    /* Evict nothing when even evicting every idle avatar (and, at best, its models) could not make
     * room: a refused load must not cost other avatars their place. */
    int loaded = 0, idle = 0;
    size_t idle_bytes = 0;
    for (int i = 0; i < r->n_entries; i++) {
        const reg_entry *x = r->entries[i];
        if (x->state != ENTRY_LOADED) continue;
        loaded++;
        if (x == e || x->refs || r->cfg.policy == SRV_EVICT_NONE) continue;
        idle++;
        idle_bytes += x->av_bytes + x->unet->bytes + x->encoder->bytes;
    }
    if (loaded - idle + 1 > r->cfg.max_models ||
        (r->total_bytes > idle_bytes ? r->total_bytes - idle_bytes : 0) + e->av_bytes > r->cfg.max_bytes)
        idle = -1; /* cannot fit: fail below without evicting */
    for (;;) {
        loaded = 0;
        for (int i = 0; i < r->n_entries; i++) loaded += r->entries[i]->state == ENTRY_LOADED;
        int count_ok = loaded + 1 <= r->cfg.max_models;
        int bytes_ok = r->total_bytes + e->av_bytes <= r->cfg.max_bytes;
        if (count_ok && bytes_ok) return 0;
        reg_entry *v = idle < 0 ? NULL : victim(r, e);
        if (!v)
            return count_ok
                       ? ls_fail(err, LS_ENOMEM, "avatar '%s' (%.1f MiB) does not fit the memory budget: "
                                 "%.1f of %.1f MiB held by avatars in use", e->id, own / 1048576.0,
                                 r->total_bytes / 1048576.0, r->cfg.max_bytes / 1048576.0)
                       : ls_fail(err, LS_ENOMEM, "cannot load avatar '%s': %d avatars loaded "
                                 "(capacity.max_models) and none can be evicted", e->id, loaded);
        entry_unload(r, v);
    }
}

/* The fast-path caches of a freshly read avatar (no lock held): about 0.5 ms (crops) + 5 ms (JPEG)
 * per 1280x720 frame, once per load. */
static int entry_caches(const reg_registry *r, const avatar *av, pipe_avcache **prepared,
                        pipe_jpeg_set **jpeg, ls_err *err) {
    if (!(*prepared = pipe_avcache_create(av, err))) return -1;
    if (!(*jpeg = pipe_jpeg_set_create(av, r->cfg.jpeg_quality, 0, 1, err))) {
        pipe_avcache_free(*prepared);
        *prepared = NULL;
        return -1;
    }
    return 0;
}

/* Loads e (mu held, state UNLOADED); drops the lock while reading files and models. */
static int entry_load(reg_registry *r, reg_entry *e, ls_err *err) {
    e->state = ENTRY_LOADING;
    pthread_mutex_unlock(&r->mu);
    uint64_t t0 = pipe_now_ns();
    avatar *av = entry_read(r, e, err);
    pipe_avcache *prepared = NULL;
    pipe_jpeg_set *jpeg = NULL;
    if (av && entry_caches(r, av, &prepared, &jpeg, err) != 0) {
        avatar_free(av);
        av = NULL;
    }
    pthread_mutex_lock(&r->mu);
    if (av) {
        e->av = av;
        e->prepared = prepared;
        e->jpeg = jpeg;
        e->av_bytes = avatar_bytes(av) + pipe_avcache_bytes(prepared) + pipe_jpeg_set_bytes(jpeg);
        r->total_bytes += e->av_bytes; /* entry_unload takes it back on failure */
        /* Placed before the models load (they drop the lock), so a concurrent load counts it. */
        e->device = reg_model_place(r, e->mcfg);
        if ((e->encoder = reg_model_acquire(r, av->encoder_path, ORT_ROLE_ENCODER, e->device, err)) &&
            (e->unet = reg_model_acquire(r, av->unet_path, ORT_ROLE_UNET, e->device, err))) {
            r->total_bytes -= e->av_bytes; /* make_room asks whether it fits on top of the rest */
            int fits = make_room(r, e, err) == 0;
            r->total_bytes += e->av_bytes;
            if (fits) {
                e->state = ENTRY_LOADED;
                e->load_ms = (double)(pipe_now_ns() - t0) / 1e6;
                e->n_frames = av->frame_count;
                e->width = av->width;
                e->height = av->height;
                publish(r);
                pthread_cond_broadcast(&r->cond);
                return 0;
            }
        }
        entry_unload(r, e);
    }
    e->state = ENTRY_UNLOADED;
    publish(r);
    pthread_cond_broadcast(&r->cond);
    /* The id exists (entry_get found it), so a file missing or unreadable inside its package is a
     * broken package (FAILED_PRECONDITION), not an unknown avatar (NOT_FOUND) or a bug (INTERNAL). */
    if (err && (err->code == LS_ENOTFOUND || err->code == LS_EIO)) err->code = LS_EFORMAT;
    return ls_wrap(err, "avatar '%s'", e->id);
}

/* Finds or loads id and takes a lease; count: a request (statistics, LFU). */
static int acquire(reg_registry *r, const char *id, int count, reg_lease *out, ls_err *err) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->mu);
    reg_entry *e = entry_get(r, id, err);
    while (e && e->state != ENTRY_LOADED) {
        if (e->state == ENTRY_LOADING) {
            pthread_cond_wait(&r->cond, &r->mu);
        } else if (entry_load(r, e, err) == 0) {
            out->loaded_now = true;
            out->load_ms = e->load_ms;
        } else {
            e = NULL;
        }
    }
    if (!e) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    e->refs++;
    /* A load (LoadAvatar) is not a use: it neither counts as a request nor moves last_used; a
     * fresh load still starts at the young end of the LRU order. */
    if (count || out->loaded_now) e->last_tick = ++r->tick;
    if (count) {
        e->requests++;
        e->last_used_ms = unix_ms();
    }
    *out = (reg_lease){.entry = e, .av = e->av, .prepared = e->prepared, .jpeg = e->jpeg,
                       .encoder = e->encoder, .unet = e->unet,
                       .loaded_now = out->loaded_now, .load_ms = out->load_ms};
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int reg_acquire(reg_registry *r, const char *id, reg_lease *out, ls_err *err) {
    return acquire(r, id, 1, out, err);
}

void reg_release(reg_registry *r, reg_lease *l, const reg_use *use) {
    reg_entry *e = l->entry;
    if (!e) return;
    pthread_mutex_lock(&r->mu);
    if (use) {
        e->frames += use->frames;
        e->render_ns += use->render_ns;
        e->infer_ns += use->infer_ns;
    }
    if (--e->refs == 0 && e->unload_pending) {
        entry_unload(r, e);
        publish(r);
    }
    pthread_mutex_unlock(&r->mu);
    memset(l, 0, sizeof *l);
}

static void info_fill(const reg_registry *r, const reg_entry *e, reg_info *o) {
    (void)r;
    memset(o, 0, sizeof *o);
    snprintf(o->id, sizeof o->id, "%s", e->id);
    o->loaded = e->state == ENTRY_LOADED;
    o->frames = e->n_frames;
    o->width = e->width;
    o->height = e->height;
    o->gpu_id = o->loaded ? e->unet->device : -1;
    if (o->loaded) o->memory_bytes = e->av_bytes + e->unet->bytes + e->encoder->bytes;
    o->requests = e->requests;
    o->frames_rendered = e->frames;
    o->render_ns = e->render_ns;
    o->infer_ns = e->infer_ns;
    o->last_used_ms = e->last_used_ms;
    o->in_use = e->refs;
    o->load_ms = e->load_ms;
}

int reg_load(reg_registry *r, const char *id, reg_info *info, double *load_ms, bool *already, ls_err *err) {
    reg_lease l;
    if (acquire(r, id, 0, &l, err) != 0) return -1;
    pthread_mutex_lock(&r->mu);
    l.entry->unload_pending = 0; /* an explicit load keeps it */
    l.entry->refs--;
    info_fill(r, l.entry, info);
    pthread_mutex_unlock(&r->mu);
    *already = !l.loaded_now;
    *load_ms = l.load_ms;
    return 0;
}

int reg_unload(reg_registry *r, const char *id, bool *deferred, ls_err *err) {
    *deferred = false;
    if (val_avatar_id(id, err)) return -1;
    pthread_mutex_lock(&r->mu);
    reg_entry *e = entry_find(r, id);
    while (e && e->state == ENTRY_LOADING) pthread_cond_wait(&r->cond, &r->mu);
    int rc = 0;
    if (!e || e->state != ENTRY_LOADED) {
        rc = ls_fail(err, LS_ENOTFOUND, "avatar '%s' is not loaded", id);
    } else if (e->refs) {
        e->unload_pending = 1;
        *deferred = true;
    } else {
        entry_unload(r, e);
        publish(r);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int reg_preload(reg_registry *r, ls_err *err) {
    for (int i = 0; i < r->cfg.n_models; i++) {
        const srv_model_cfg *m = &r->cfg.models[i];
        if (!m->preload_model && !m->preload_backgrounds) continue;
        reg_info info;
        double ms;
        bool already;
        if (reg_load(r, m->id, &info, &ms, &already, err) != 0) return ls_wrap(err, "preload");
    }
    return 0;
}

void reg_list(reg_registry *r, bool loaded_only, reg_list_fn fn, void *ctx) {
    reg_info info;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_entries; i++) {
        if (loaded_only && r->entries[i]->state != ENTRY_LOADED) continue;
        info_fill(r, r->entries[i], &info);
        fn(ctx, &info);
    }
    if (loaded_only) goto done;
    for (int i = 0; i < r->cfg.n_models; i++) {
        if (entry_find(r, r->cfg.models[i].id)) continue;
        memset(&info, 0, sizeof info);
        snprintf(info.id, sizeof info.id, "%s", r->cfg.models[i].id);
        fn(ctx, &info);
    }
    DIR *d = r->root_real ? opendir(r->root_real) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (val_avatar_id(de->d_name, NULL) || entry_find(r, de->d_name) || config_model(r, de->d_name))
            continue;
        char *dir = package_dir(r, de->d_name, NULL);
        if (!dir) continue;
        free(dir);
        memset(&info, 0, sizeof info);
        snprintf(info.id, sizeof info.id, "%.64s", de->d_name);
        fn(ctx, &info);
    }
    if (d) closedir(d);
done:
    pthread_mutex_unlock(&r->mu);
}

int reg_loaded_count(const reg_registry *r) { return atomic_load(&r->loaded_pub); }
size_t reg_total_bytes(const reg_registry *r) { return atomic_load(&r->total_pub); }

int reg_bind_worker(reg_registry *r, reg_binding *held, const reg_lease *l, pipe_worker *w, ls_err *err) {
    if (held->encoder == l->encoder && held->unet == l->unet) return 0;
    /* The lease keeps the new models alive during the bind; the old ones are alive until we let go. */
    if (pipe_worker_bind(w, l->encoder->m, l->unet->m, err) != 0) {
        reg_unbind_worker(r, held, w);
        return -1;
    }
    pthread_mutex_lock(&r->mu);
    l->encoder->worker_refs++;
    l->unet->worker_refs++;
    reg_model_release_worker(r, held->encoder);
    reg_model_release_worker(r, held->unet);
    pthread_mutex_unlock(&r->mu);
    held->encoder = l->encoder;
    held->unet = l->unet;
    return 0;
}

void reg_unbind_worker(reg_registry *r, reg_binding *held, pipe_worker *w) {
    pipe_worker_bind(w, NULL, NULL, NULL);
    pthread_mutex_lock(&r->mu);
    reg_model_release_worker(r, held->encoder);
    reg_model_release_worker(r, held->unet);
    pthread_mutex_unlock(&r->mu);
    held->encoder = held->unet = NULL;
}
