/* avatar_cache.c - per-avatar prepared face crops (see avatar_cache.h). */
#include "pipeline/avatar_cache.h"

#include <stdlib.h>
#include <string.h>

#include "image/prepare.h"

struct pipe_avcache {
    const avatar *av;
    uint8_t *crops; /* frame_count x PREP_CROP_BYTES */
};

pipe_avcache *pipe_avcache_create(const avatar *av, ls_err *err) {
    if (!av || av->frame_count < 1) {
        ls_fail(err, LS_EINVAL, "avatar cache: no avatar frames");
        return NULL;
    }
    pipe_avcache *c = calloc(1, sizeof *c);
    resize_scratch rs = {0};
    float *input = NULL; /* prep_frame also writes the float input: one frame's worth of scratch */
    if (!c || !(c->crops = malloc((size_t)av->frame_count * PREP_CROP_BYTES))) {
        ls_fail(err, LS_ENOMEM, "avatar cache: out of memory for %d crops of %zu bytes",
                av->frame_count, PREP_CROP_BYTES);
        goto fail;
    }
    c->av = av;
    int side = av->width > av->height ? av->width : av->height;
    if (side < PREP_CROP) side = PREP_CROP;
    if (resize_scratch_init(&rs, side, side, err) != 0) goto fail;
    if (!(input = malloc(PREP_INPUT_FLOATS * sizeof(float)))) {
        ls_fail(err, LS_ENOMEM, "avatar cache: out of memory");
        goto fail;
    }
    for (int i = 0; i < av->frame_count; i++) {
        if (prep_frame(avatar_frame(av, i), av->width, av->height, (size_t)av->width * 3, av->boxes[i],
                       c->crops + (size_t)i * PREP_CROP_BYTES, input, &rs, err) != 0) {
            ls_wrap(err, "avatar cache: frame %d", i);
            goto fail;
        }
    }
    free(input);
    resize_scratch_free(&rs);
    return c;
fail:
    free(input);
    resize_scratch_free(&rs);
    pipe_avcache_free(c);
    return NULL;
}

void pipe_avcache_free(pipe_avcache *c) {
    if (!c) return;
    free(c->crops);
    free(c);
}

const avatar *pipe_avcache_avatar(const pipe_avcache *c) { return c->av; }

size_t pipe_avcache_bytes(const pipe_avcache *c) {
    return sizeof *c + (size_t)c->av->frame_count * PREP_CROP_BYTES;
}

const uint8_t *pipe_avcache_crop(const pipe_avcache *c, int i) {
    return c->crops + (size_t)i * PREP_CROP_BYTES;
}

void pipe_avcache_prepare(const pipe_avcache *c, int i, uint8_t *crop, float *input) {
    const uint8_t *src = pipe_avcache_crop(c, i);
    const size_t row = (size_t)PREP_CROP * 3, side = (size_t)PREP_BORDER * 3;
    /* Only the border: paste-back reads no more of the crop (the inside comes from the UNet). */
    memcpy(crop, src, PREP_BORDER * row);
    for (int y = PREP_BORDER; y < PREP_CROP - PREP_BORDER; y++) {
        memcpy(crop + y * row, src + y * row, side);
        memcpy(crop + (y + 1) * row - side, src + (y + 1) * row - side, side);
    }
    memcpy(crop + (PREP_CROP - PREP_BORDER) * row, src + (PREP_CROP - PREP_BORDER) * row, PREP_BORDER * row);
    prep_input_from_crop(src, input);
}
