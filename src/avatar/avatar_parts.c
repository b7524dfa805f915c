/* avatar_parts.c - an avatar from explicit frame, box and model paths (avatar_load_parts in
 * avatar.h): the layout the Go server's `models:` entries use, with no manifest to read. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avatar/avatar.h"
#include "avatar/avatar_io.h"
#include "media/video_in.h"

static int parts_frames_folder(avatar *a, const char *dir, int max_frames, ls_err *err) {
    char **names = NULL;
    int n = 0, rc = -1;
    avatar_decoder dec = {0};
    if (avatar_list_frames(dir, &names, &n, err) != 0) return -1;
    if (avatar_decoder_init(&dec, err) != 0) goto done;
    a->frame_count = max_frames > 0 && max_frames < n ? max_frames : n;
    size_t cap = strlen(dir) + 2 + NAME_MAX; /* dir / any file name in it */
    char *path = malloc(cap);
    if (!path) { ls_fail(err, LS_ENOMEM, "out of memory"); goto done; }
    snprintf(path, cap, "%s/%s", dir, names[0]);
    rc = avatar_image_size(&dec, path, &a->width, &a->height, err);
    if (rc == 0 && (a->width > AVATAR_MAX_DIM || a->height > AVATAR_MAX_DIM))
        rc = ls_fail(err, LS_EFORMAT, "%s is %dx%d, larger than %d", path, a->width, a->height, AVATAR_MAX_DIM);
    size_t frame = (size_t)a->width * a->height * 3;
    if (rc == 0 && !(a->frames = malloc(frame * (size_t)a->frame_count)))
        rc = ls_fail(err, LS_ENOMEM, "out of memory for %d frames of %dx%d", a->frame_count, a->width, a->height);
    for (int i = 0; rc == 0 && i < a->frame_count; i++) {
        snprintf(path, cap, "%s/%s", dir, names[i]);
        rc = avatar_decode_image(&dec, path, (uint8_t *)avatar_frame(a, i), a->width, a->height, err);
    }
    free(path);
done:
    avatar_decoder_free(&dec);
    avatar_names_free(names, n);
    return rc;
}

static int parts_video(avatar *a, const char *video, int max_frames, ls_err *err) {
    media_video_info info;
    if (!(a->frames = media_video_read_all(video, 0, &info, err))) return -1;
    a->width = info.width;
    a->height = info.height;
    a->frame_count = max_frames > 0 && max_frames < info.frame_count ? max_frames : info.frame_count;
    if (a->frame_count < info.frame_count) { /* give back the frames past max_frames */
        uint8_t *less = realloc(a->frames, (size_t)a->width * a->height * 3 * (size_t)a->frame_count);
        if (less) a->frames = less;
    }
    return 0;
}

static int parts_boxes(avatar *a, const char *path, ls_err *err) {
    int n = 0;
    if (avatar_read_boxes(path, -1, &a->boxes, &n, err) != 0) return -1;
    if (n < a->frame_count)
        return ls_fail(err, LS_EFORMAT, "%s has %d boxes for %d frames", path, n, a->frame_count);
    for (int i = 0; i < a->frame_count; i++) {
        ls_box b = a->boxes[i];
        if (!box_inside(b, a->width, a->height))
            return ls_fail(err, LS_EFORMAT, "box of frame %d [%d, %d, %d, %d] is empty or outside the %dx%d frame",
                           i, b.x1, b.y1, b.x2, b.y2, a->width, a->height);
    }
    return 0;
}

avatar *avatar_load_parts(const avatar_parts *p, ls_err *err) {
    if (!p || !p->boxes_path || !p->unet_path || !p->encoder_path || !p->frames_dir == !p->video) {
        ls_fail(err, LS_EINVAL, "avatar_load_parts: need one of frames_dir and video, boxes and both models");
        return NULL;
    }
    avatar *a = calloc(1, sizeof *a);
    if (!a) return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    const char *src = p->frames_dir ? p->frames_dir : p->video;
    a->name = strdup(p->name ? p->name : src);
    a->dir = strdup(src);
    a->unet_path = strdup(p->unet_path);
    a->encoder_path = strdup(p->encoder_path);
    a->fps = 25;
    int rc = !a->name || !a->dir || !a->unet_path || !a->encoder_path
                 ? ls_fail(err, LS_ENOMEM, "out of memory")
                 : p->frames_dir ? parts_frames_folder(a, p->frames_dir, p->max_frames, err)
                                 : parts_video(a, p->video, p->max_frames, err);
    if (rc == 0) rc = parts_boxes(a, p->boxes_path, err);
    if (rc != 0) {
        ls_wrap(err, "avatar %s", a->name ? a->name : src);
        avatar_free(a);
        return NULL;
    }
    return a;
}
