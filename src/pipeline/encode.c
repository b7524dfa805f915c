/* encode.c - spliced JPEG output for finished frames (see encode.h). */
#include "pipeline/encode.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "image/jpeg.h"
#include "image/jpeg_splice.h"

struct pipe_jpeg_set {
    const avatar *av;
    int quality, restart;
    _Atomic(jsplice_background *) *bg; /* per avatar frame; NULL until built */
    atomic_size_t bytes;
};

struct pipe_jpeg_enc {
    jsplice_encoder *js;
    int max_w, max_h;
    uint8_t *out;
    size_t cap;
    pipe_jpeg_stats stats;
};

/* jsplice keeps the JPEG and one offset per restart segment (+1); the module has no size query. */
static size_t background_bytes(const jsplice_background *bg) {
    size_t len;
    jsplice_background_jpeg(bg, &len);
    int w = jsplice_background_width(bg), h = jsplice_background_height(bg);
    size_t mcus = (size_t)((w + 15) / 16) * (size_t)((h + 15) / 16);
    return len + (mcus / (size_t)jsplice_background_restart(bg) + 2) * sizeof(size_t) + 64;
}

/* Frame i's background, built and published on first use (a racing builder frees its copy). */
static jsplice_background *set_background(pipe_jpeg_set *s, int i, ls_err *err) {
    jsplice_background *bg = atomic_load_explicit(&s->bg[i], memory_order_acquire);
    if (bg) return bg;
    const avatar *av = s->av;
    bg = jsplice_background_create(avatar_frame(av, i), av->width, av->height, av->width * 3,
                                   s->quality, s->restart, err);
    if (!bg) {
        ls_wrap(err, "background JPEG of avatar frame %d", i);
        return NULL;
    }
    jsplice_background *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&s->bg[i], &expected, bg, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        jsplice_background_free(bg);
        return expected;
    }
    atomic_fetch_add(&s->bytes, background_bytes(bg));
    return bg;
}

pipe_jpeg_set *pipe_jpeg_set_create(const avatar *av, int quality, int restart_mcus, int build_now,
                                    ls_err *err) {
    if (!av || av->frame_count < 1) {
        ls_fail(err, LS_EINVAL, "JPEG set: no avatar frames");
        return NULL;
    }
    if (quality < 1 || quality > 100 || restart_mcus < 0 || restart_mcus > 65535) {
        ls_fail(err, LS_EINVAL, "JPEG set: quality %d or restart interval %d out of range", quality,
                restart_mcus);
        return NULL;
    }
    pipe_jpeg_set *s = calloc(1, sizeof *s);
    if (!s || !(s->bg = calloc((size_t)av->frame_count, sizeof *s->bg))) {
        free(s);
        ls_fail(err, LS_ENOMEM, "JPEG set: out of memory");
        return NULL;
    }
    s->av = av;
    s->quality = quality;
    s->restart = restart_mcus ? restart_mcus : JSPLICE_DEFAULT_RESTART_MCUS;
    atomic_init(&s->bytes, sizeof *s + (size_t)av->frame_count * sizeof *s->bg);
    for (int i = 0; build_now && i < av->frame_count; i++) {
        if (!set_background(s, i, err)) {
            pipe_jpeg_set_free(s);
            return NULL;
        }
    }
    return s;
}

void pipe_jpeg_set_free(pipe_jpeg_set *s) {
    if (!s) return;
    for (int i = 0; i < s->av->frame_count; i++) jsplice_background_free(atomic_load(&s->bg[i]));
    free(s->bg);
    free(s);
}

int pipe_jpeg_set_quality(const pipe_jpeg_set *s) { return s->quality; }

size_t pipe_jpeg_set_bytes(const pipe_jpeg_set *s) {
    return atomic_load(&((pipe_jpeg_set *)s)->bytes);
}

pipe_jpeg_enc *pipe_jpeg_enc_create(int max_w, int max_h, ls_err *err) {
    /* Restart every MCU is the largest output jsplice can make: the buffer fits any setting. */
    size_t cap = jsplice_max_jpeg_size(max_w, max_h, 1);
    if (cap == 0) {
        ls_fail(err, LS_EINVAL, "JPEG encoder: frame size %dx%d out of range", max_w, max_h);
        return NULL;
    }
    pipe_jpeg_enc *e = calloc(1, sizeof *e);
    if (!e || !(e->out = malloc(cap))) {
        ls_fail(err, LS_ENOMEM, "JPEG encoder: out of memory for %zu bytes", cap);
        goto fail;
    }
    if (!(e->js = jsplice_encoder_create(max_w, max_h, err))) goto fail;
    e->max_w = max_w, e->max_h = max_h, e->cap = cap;
    return e;
fail:
    pipe_jpeg_enc_free(e);
    return NULL;
}

void pipe_jpeg_enc_free(pipe_jpeg_enc *e) {
    if (!e) return;
    jsplice_encoder_free(e->js);
    free(e->out);
    free(e);
}

void pipe_jpeg_enc_stats(const pipe_jpeg_enc *e, pipe_jpeg_stats *out) { *out = e->stats; }

/* Frame f's background when f can be spliced at quality q (0 = the set's); NULL otherwise or on
 * error (*failed then set). */
static jsplice_background *splice_background(pipe_jpeg_set *set, const pipe_frame *f, int q, int *failed,
                                             ls_err *err) {
    *failed = 0;
    if (!set || f->avatar_frame < 0 || f->avatar_frame >= set->av->frame_count) return NULL;
    jsplice_background *bg = set_background(set, f->avatar_frame, err);
    if (!bg) {
        *failed = 1;
        return NULL;
    }
    return jsplice_can_splice(bg, f->width, f->height, q ? q : set->quality, f->box) ? bg : NULL;
}

int pipe_jpeg_region(pipe_jpeg_set *set, const pipe_frame *f, int quality, ls_box *need, ls_err *err) {
    int failed;
    jsplice_background *bg = splice_background(set, f, quality, &failed, err);
    if (failed) return -1;
    if (bg) return jsplice_region(bg, f->box, need, err);
    *need = (ls_box){0, 0, f->width, f->height};
    return 0;
}

int pipe_jpeg_encode(pipe_jpeg_enc *e, pipe_jpeg_set *set, const pipe_frame *f, int quality,
                     const uint8_t **out, size_t *out_len, ls_err *err) {
    if (quality == 0) quality = set ? set->quality : JPEG_DEFAULT_QUALITY;
    if (quality < 1 || quality > 100) return ls_fail(err, LS_EINVAL, "JPEG quality %d outside 1..100", quality);
    if (f->width > e->max_w || f->height > e->max_h || f->stride > (size_t)INT32_MAX)
        return ls_fail(err, LS_EINVAL, "frame %dx%d larger than the JPEG encoder's %dx%d", f->width,
                       f->height, e->max_w, e->max_h);
    int failed;
    jsplice_background *bg = splice_background(set, f, quality, &failed, err);
    if (failed) return -1;
    if (bg) {
        if (jsplice_encode(e->js, bg, f->bgr, (int)f->stride, f->box, e->out, e->cap, out_len, err))
            return ls_wrap(err, "frame %zu", f->index);
        e->stats.spliced++;
        *out = e->out;
        return 0;
    }
    const ls_box v = f->valid; /* all zero: a frame not made by render, taken as whole */
    int whole = (v.x1 == 0 && v.y1 == 0 && v.x2 == f->width && v.y2 == f->height) ||
                (v.x1 == 0 && v.y1 == 0 && v.x2 == 0 && v.y2 == 0);
    if (!whole)
        return ls_fail(err, LS_EINVAL, "frame %zu: a full encode needs the whole frame, render restored "
                       "only part of it (use pipe_jpeg_region with the same quality)", f->index);
    int restart = set ? set->restart : JSPLICE_DEFAULT_RESTART_MCUS;
    if (jsplice_encode_full(e->js, f->bgr, f->width, f->height, (int)f->stride, quality, restart,
                            e->out, e->cap, out_len, err))
        return ls_wrap(err, "frame %zu", f->index);
    e->stats.full++;
    *out = e->out;
    return 0;
}
