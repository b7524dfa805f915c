/* avatar.c - loading an avatar package: manifest, boxes, and every frame decoded into one block. */
#include "avatar/avatar.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "avatar/avatar_io.h"
#include "media/video_in.h"

#define MAX_MANIFEST ((size_t)1 << 20)

void avatar_free(avatar *a) {
    if (!a) return;
    free(a->name);
    free(a->dir);
    free(a->unet_path);
    free(a->encoder_path);
    free(a->frames);
    free(a->boxes);
    free(a);
}

size_t avatar_bytes(const avatar *a) {
    if (!a) return 0;
    size_t n = sizeof *a + (size_t)a->frame_count * a->height * a->width * 3 +
               (size_t)a->frame_count * sizeof(ls_box);
    const char *s[] = {a->name, a->dir, a->unet_path, a->encoder_path};
    for (int i = 0; i < 4; i++) n += s[i] ? strlen(s[i]) + 1 : 0;
    return n;
}

static char *join(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

/* A data path must stay inside the package: relative, no ".." component. */
static int safe_relative(const char *p) {
    if (!*p || *p == '/') return 0;
    for (const char *s = p; *s;) {
        size_t len = strcspn(s, "/");
        if (len == 2 && s[0] == '.' && s[1] == '.') return 0;
        s += len;
        while (*s == '/') s++;
    }
    return 1;
}

typedef struct manifest {
    const char *name, *frames, *video, *boxes, *landmarks, *unet, *encoder;
    int fps, width, height, frame_count;
} manifest;

static int get_int(const cJSON *root, const char *key, int lo, int hi, int *out, ls_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(v)) return ls_fail(err, LS_EFORMAT, "manifest.json: \"%s\" must be a number", key);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != (int)d)
        return ls_fail(err, LS_EFORMAT, "manifest.json: \"%s\" = %g is not an integer in %d..%d", key,
                       d, lo, hi);
    *out = (int)d;
    return 0;
}

static const char *get_str(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int parse_manifest(const cJSON *root, manifest *m, ls_err *err) {
    if (!cJSON_IsObject(root)) return ls_fail(err, LS_EFORMAT, "manifest.json is not a JSON object");
    if (get_int(root, "fps", 1, 240, &m->fps, err) || get_int(root, "width", 1, AVATAR_MAX_DIM, &m->width, err) ||
        get_int(root, "height", 1, AVATAR_MAX_DIM, &m->height, err) ||
        get_int(root, "frame_count", 1, AVATAR_MAX_FRAMES, &m->frame_count, err))
        return -1;
    m->name = get_str(root, "name");
    m->frames = get_str(root, "frames");
    m->video = get_str(root, "video");
    m->boxes = get_str(root, "boxes");
    m->landmarks = get_str(root, "landmarks");
    m->unet = get_str(root, "unet");
    m->encoder = get_str(root, "encoder");
    if (!m->frames == !m->video)
        return ls_fail(err, LS_EFORMAT, "manifest.json: give exactly one of \"frames\" and \"video\"");
    if (!m->boxes == !m->landmarks)
        return ls_fail(err, LS_EFORMAT, "manifest.json: give exactly one of \"boxes\" and \"landmarks\"");
    if (!m->unet || !m->encoder)
        return ls_fail(err, LS_EFORMAT, "manifest.json: \"unet\" and \"encoder\" model paths are required");
    const char *data[] = {m->frames, m->video, m->boxes, m->landmarks};
    for (int i = 0; i < 4; i++)
        if (data[i] && !safe_relative(data[i]))
            return ls_fail(err, LS_EFORMAT,
                           "manifest.json: \"%s\" must be a relative path inside the avatar folder",
                           data[i]);
    return 0;
}

static int load_boxes(avatar *a, const manifest *m, ls_err *err) {
    char *path = join(a->dir, m->boxes ? m->boxes : m->landmarks);
    if (!path) return ls_fail(err, LS_ENOMEM, "out of memory");
    int n = 0;
    int rc = m->boxes ? avatar_read_boxes(path, a->frame_count, &a->boxes, &n, err)
                      : avatar_read_landmarks(path, a->frame_count, &a->boxes, &n, err);
    free(path);
    if (rc) return -1;
    for (int i = 0; i < n; i++) {
        ls_box b = a->boxes[i];
        if (!box_inside(b, a->width, a->height))
            return ls_fail(err, LS_EFORMAT, "box of frame %d [%d, %d, %d, %d] is empty or outside the %dx%d frame",
                           i, b.x1, b.y1, b.x2, b.y2, a->width, a->height);
    }
    return 0;
}

static int load_frames_folder(avatar *a, const char *rel, ls_err *err) {
    char *dir = join(a->dir, rel);
    char **names = NULL;
    int n = 0, rc = -1;
    avatar_decoder dec = {0};
    if (!dir) return ls_fail(err, LS_ENOMEM, "out of memory");
    if (avatar_list_frames(dir, &names, &n, err) != 0) goto done;
    if (n != a->frame_count) {
        ls_fail(err, LS_EFORMAT, "%s holds %d frames but manifest.json says frame_count %d", dir, n,
                a->frame_count);
        goto done;
    }
    if (avatar_decoder_init(&dec, err) != 0) goto done;
    rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        char *path = join(dir, names[i]);
        if (!path) rc = ls_fail(err, LS_ENOMEM, "out of memory");
        else rc = avatar_decode_image(&dec, path, (uint8_t *)avatar_frame(a, i), a->width, a->height, err);
        free(path);
    }
done:
    avatar_decoder_free(&dec);
    avatar_names_free(names, n);
    free(dir);
    return rc;
}

static int copy_video_frame(void *user, int i, const uint8_t *bgr, int w, int h, ls_err *err) {
    avatar *a = user;
    if (i >= a->frame_count)
        return ls_fail(err, LS_EFORMAT, "the video has more frames than manifest.json's frame_count %d",
                       a->frame_count);
    if (w != a->width || h != a->height)
        return ls_fail(err, LS_EFORMAT, "the video is %dx%d but manifest.json says %dx%d", w, h,
                       a->width, a->height);
    memcpy((uint8_t *)avatar_frame(a, i), bgr, (size_t)w * h * 3);
    return 0;
}

static int load_video(avatar *a, const char *rel, ls_err *err) {
    char *path = join(a->dir, rel);
    if (!path) return ls_fail(err, LS_ENOMEM, "out of memory");
    media_video_info info;
    int rc = media_video_decode(path, copy_video_frame, a, &info, err);
    if (rc == 0 && info.frame_count != a->frame_count)
        rc = ls_fail(err, LS_EFORMAT, "%s has %d frames but manifest.json says frame_count %d", path,
                     info.frame_count, a->frame_count);
    free(path);
    return rc;
}

/* Model paths are relative to the folder unless absolute. */
static char *model_path(const char *dir, const char *p) { return p[0] == '/' ? strdup(p) : join(dir, p); }

static int load(avatar *a, const char *dir, ls_err *err) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ls_fail(err, LS_ENOTFOUND, "avatar folder %s does not exist", dir);
    char *mpath = join(dir, "manifest.json");
    if (!mpath) return ls_fail(err, LS_ENOMEM, "out of memory");
    size_t len;
    char *text = avatar_read_file(mpath, MAX_MANIFEST, &len, err);
    free(mpath);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return ls_fail(err, LS_EFORMAT, "manifest.json is not valid JSON");
    manifest m = {0};
    int rc = parse_manifest(root, &m, err);
    if (rc == 0) {
        const char *base = strrchr(dir, '/');
        a->name = strdup(m.name ? m.name : base && base[1] ? base + 1 : dir);
        a->dir = strdup(dir);
        a->unet_path = model_path(dir, m.unet);
        a->encoder_path = model_path(dir, m.encoder);
        a->fps = m.fps;
        a->width = m.width;
        a->height = m.height;
        a->frame_count = m.frame_count;
        if (!a->name || !a->dir || !a->unet_path || !a->encoder_path)
            rc = ls_fail(err, LS_ENOMEM, "out of memory");
    }
    if (rc == 0) rc = load_boxes(a, &m, err); /* cheap checks before decoding frames */
    if (rc == 0) {
        size_t frame = (size_t)a->width * a->height * 3;
        if ((size_t)a->frame_count > SIZE_MAX / frame)
            rc = ls_fail(err, LS_ENOMEM, "%d frames of %dx%d do not fit in memory", a->frame_count,
                         a->width, a->height);
        else if (!(a->frames = malloc(frame * a->frame_count)))
            rc = ls_fail(err, LS_ENOMEM, "out of memory for %d frames of %dx%d (%zu MiB)",
                         a->frame_count, a->width, a->height, (frame * a->frame_count) >> 20);
    }
    if (rc == 0) rc = m.frames ? load_frames_folder(a, m.frames, err) : load_video(a, m.video, err);
    cJSON_Delete(root);
    return rc;
}

avatar *avatar_load(const char *dir, ls_err *err) {
    if (!dir || !*dir) return ls_fail(err, LS_EINVAL, "avatar_load: no folder given"), NULL;
    avatar *a = calloc(1, sizeof *a);
    if (!a) return ls_fail(err, LS_ENOMEM, "out of memory"), NULL;
    if (load(a, dir, err) != 0) {
        ls_wrap(err, "avatar %s", dir);
        avatar_free(a);
        return NULL;
    }
    return a;
}
