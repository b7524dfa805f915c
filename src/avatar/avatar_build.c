/* avatar_build.c - writes an avatar package (manifest, boxes, frames or video) and loads it back. */
#include "avatar/avatar_build.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "avatar/avatar_io.h"
#include "media/video_in.h"

/* snprintf into a PATH_MAX buffer, failing cleanly instead of truncating. */
__attribute__((format(printf, 3, 4))) static int pathf(char *buf, ls_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, PATH_MAX, fmt, ap);
    va_end(ap);
    return n < 0 || n >= PATH_MAX ? ls_fail(err, LS_EINVAL, "path too long") : 0;
}

static int must_be_file(const char *what, const char *path, ls_err *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return ls_fail(err, errno == ENOENT ? LS_ENOTFOUND : LS_EIO, "%s %s: %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ls_fail(err, LS_EINVAL, "%s %s is not a file", what, path);
    return 0;
}

static int copy_file(const char *from, const char *to, ls_err *err) {
    FILE *in = fopen(from, "rb");
    if (!in) return ls_fail(err, LS_EIO, "%s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wbx");
    if (!out) {
        fclose(in);
        return ls_fail(err, LS_EIO, "%s: %s", to, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = ls_fail(err, LS_EIO, "%s: %s", to, strerror(errno));
    if (rc == 0 && ferror(in)) rc = ls_fail(err, LS_EIO, "%s: read error", from);
    fclose(in);
    if (fclose(out) != 0 && rc == 0) rc = ls_fail(err, LS_EIO, "%s: %s", to, strerror(errno));
    return rc;
}

static int write_text(const char *path, const char *text, ls_err *err) {
    FILE *f = fopen(path, "wx");
    if (!f) return ls_fail(err, LS_EIO, "%s: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    if (fclose(f) != 0) bad = 1;
    return bad ? ls_fail(err, LS_EIO, "%s: write failed", path) : 0;
}

/* The path of file `to` relative to folder `from` (both absolute and canonical, from realpath):
 * one "../" per component of `from` below the common folder, then the rest of `to`. */
static char *relative_path(const char *from, const char *to) {
    char f[PATH_MAX + 2];
    snprintf(f, sizeof f, "%s%s", from, from[strlen(from) - 1] == '/' ? "" : "/");
    size_t common = 0;
    for (size_t i = 0; f[i] && f[i] == to[i]; i++)
        if (f[i] == '/') common = i + 1;
    int ups = 0;
    for (const char *s = f + common; *s; s++) ups += *s == '/';
    size_t n = (size_t)ups * 3 + strlen(to + common) + 1;
    char *p = malloc(n);
    if (!p) return NULL;
    p[0] = 0;
    for (int k = 0; k < ups; k++) strcat(p, "../");
    strcat(p, to + common);
    return p;
}

static char *model_rel(const char *out_real, const char *model, ls_err *err) {
    char real[PATH_MAX];
    if (!realpath(model, real)) return ls_fail(err, LS_EIO, "%s: %s", model, strerror(errno)), NULL;
    char *r = relative_path(out_real, real);
    if (!r) ls_fail(err, LS_ENOMEM, "out of memory");
    return r;
}

static int count_frame(void *user, int i, const uint8_t *bgr, int w, int h, ls_err *err) {
    (void)user, (void)i, (void)bgr, (void)w, (void)h, (void)err;
    return 0;
}

/* Copies the frames as out/frames/NNNN.<ext>, numbered from 0. */
static int copy_frames(const char *src, const char *out, int *w, int *h, int *n, ls_err *err) {
    char **names = NULL;
    if (avatar_list_frames(src, &names, n, err) != 0) return -1;
    char dst_dir[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
    int rc = pathf(dst_dir, err, "%s/frames", out);
    if (rc == 0 && mkdir(dst_dir, 0755) != 0) rc = ls_fail(err, LS_EIO, "%s: %s", dst_dir, strerror(errno));
    avatar_decoder dec = {0};
    if (rc == 0) rc = avatar_decoder_init(&dec, err);
    int digits = 4;
    for (int m = *n - 1; m >= 10000; m /= 10) digits++;
    for (int i = 0; rc == 0 && i < *n; i++) {
        char ext[8] = "jpg";
        const char *dot = strrchr(names[i], '.');
        for (int k = 0; k < 7 && dot[k + 1]; k++) ext[k] = (char)tolower((unsigned char)dot[k + 1]), ext[k + 1] = 0;
        rc = pathf(from, err, "%s/%s", src, names[i]);
        if (rc == 0) rc = pathf(to, err, "%s/%0*d.%s", dst_dir, digits, i, ext);
        if (rc == 0 && i == 0) rc = avatar_image_size(&dec, from, w, h, err);
        if (rc == 0) rc = copy_file(from, to, err);
    }
    avatar_decoder_free(&dec);
    avatar_names_free(names, *n);
    return rc;
}

static int copy_video(const char *video, const char *out, char *rel, size_t relsz, int *w, int *h,
                      int *n, ls_err *err) {
    media_video_info info;
    if (media_video_decode(video, count_frame, NULL, &info, err) != 0) return -1;
    *w = info.width, *h = info.height, *n = info.frame_count;
    const char *dot = strrchr(video, '.'), *slash = strrchr(video, '/');
    int ok = dot && (!slash || dot > slash) && strlen(dot) <= 6;
    for (const char *s = dot + (ok ? 1 : 0); ok && *s; s++) ok = isalnum((unsigned char)*s);
    snprintf(rel, relsz, "source%s", ok ? dot : ".mp4");
    char to[PATH_MAX];
    return pathf(to, err, "%s/%s", out, rel) ? -1 : copy_file(video, to, err);
}

static int write_boxes(const char *out, const ls_box *b, int n, ls_err *err) {
    char path[PATH_MAX];
    if (pathf(path, err, "%s/crop_rects.json", out)) return -1;
    FILE *f = fopen(path, "wx");
    if (!f) return ls_fail(err, LS_EIO, "%s: %s", path, strerror(errno));
    int bad = 0;
    for (int i = 0; i < n; i++) /* the layout of the reference's crop_rects.json */
        bad |= fprintf(f, "%s[%d, %d, %d, %d]", i ? ", " : "[", b[i].x1, b[i].y1, b[i].x2, b[i].y2) < 0;
    bad |= fputs("]\n", f) < 0;
    if (fclose(f) != 0) bad = 1;
    return bad ? ls_fail(err, LS_EIO, "%s: write failed", path) : 0;
}

static int write_manifest(const avatar_build_opts *o, const char *out_real, const char *video_rel,
                          int w, int h, int n, ls_err *err) {
    char *unet = model_rel(out_real, o->unet, err);
    char *enc = unet ? model_rel(out_real, o->encoder, err) : NULL;
    cJSON *m = cJSON_CreateObject();
    const char *base = strrchr(out_real, '/');
    int rc = -1;
    if (unet && enc && m) {
        cJSON_AddStringToObject(m, "name", o->name ? o->name : base ? base + 1 : out_real);
        cJSON_AddNumberToObject(m, "fps", o->fps ? o->fps : 25);
        cJSON_AddNumberToObject(m, "width", w);
        cJSON_AddNumberToObject(m, "height", h);
        cJSON_AddNumberToObject(m, "frame_count", n);
        if (video_rel) cJSON_AddStringToObject(m, "video", video_rel);
        else cJSON_AddStringToObject(m, "frames", "frames");
        cJSON_AddStringToObject(m, "boxes", "crop_rects.json");
        cJSON_AddStringToObject(m, "unet", unet);
        cJSON_AddStringToObject(m, "encoder", enc);
        char *text = cJSON_Print(m);
        char path[PATH_MAX];
        rc = pathf(path, err, "%s/manifest.json", out_real);
        if (rc == 0) rc = text ? write_text(path, text, err) : ls_fail(err, LS_ENOMEM, "out of memory");
        free(text);
    } else if (unet && enc) {
        ls_fail(err, LS_ENOMEM, "out of memory");
    }
    cJSON_Delete(m);
    free(unet);
    free(enc);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Makes out_dir (or accepts an empty one); *created says whether we made it. */
static int prepare_out(const char *out, int *created, ls_err *err) {
    *created = 0;
    if (mkdir(out, 0755) == 0) return *created = 1, 0;
    if (errno != EEXIST) return ls_fail(err, LS_EIO, "cannot create %s: %s", out, strerror(errno));
    DIR *d = opendir(out);
    if (!d) return ls_fail(err, LS_EINVAL, "%s exists and is not a folder", out);
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d))) empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    return empty ? 0 : ls_fail(err, LS_EINVAL, "%s already exists and is not empty", out);
}

static int check_opts(const avatar_build_opts *o, ls_err *err) {
    if (!o || !o->out_dir || !*o->out_dir) return ls_fail(err, LS_EINVAL, "no output folder given");
    if (!o->video == !o->frames_dir) return ls_fail(err, LS_EINVAL, "give exactly one of a video and a frames folder");
    if (!o->boxes == !o->landmarks) return ls_fail(err, LS_EINVAL, "give exactly one of boxes and landmarks");
    if (!o->unet || !o->encoder) return ls_fail(err, LS_EINVAL, "both model files (unet, encoder) are required");
    if (o->fps < 0 || o->fps > 240) return ls_fail(err, LS_EINVAL, "fps %d is out of range", o->fps);
    if (o->name && (!*o->name || strlen(o->name) > 256)) return ls_fail(err, LS_EINVAL, "bad avatar name");
    if (o->video && must_be_file("video", o->video, err)) return -1;
    if (o->boxes && must_be_file("boxes file", o->boxes, err)) return -1;
    if (o->landmarks && must_be_file("landmarks file", o->landmarks, err)) return -1;
    if (must_be_file("UNet model", o->unet, err) || must_be_file("encoder model", o->encoder, err)) return -1;
    return 0;
}

static int build(const avatar_build_opts *o, const char *out, avatar **loaded, ls_err *err) {
    int w = 0, h = 0, n = 0, nb = 0;
    char video_rel[32];
    if (o->video ? copy_video(o->video, out, video_rel, sizeof video_rel, &w, &h, &n, err)
                 : copy_frames(o->frames_dir, out, &w, &h, &n, err))
        return -1;
    ls_box *boxes = NULL;
    int rc = o->boxes ? avatar_read_boxes(o->boxes, n, &boxes, &nb, err)
                      : avatar_read_landmarks(o->landmarks, n, &boxes, &nb, err);
    if (rc == 0) rc = write_boxes(out, boxes, nb, err);
    free(boxes);
    if (rc == 0) rc = write_manifest(o, out, o->video ? video_rel : NULL, w, h, n, err);
    if (rc) return -1;
    avatar *a = avatar_load(out, err);
    if (!a) return ls_wrap(err, "the written package does not load");
    if (loaded) *loaded = a;
    else avatar_free(a);
    return 0;
}

int avatar_build(const avatar_build_opts *o, avatar **loaded, ls_err *err) {
    if (loaded) *loaded = NULL;
    if (check_opts(o, err)) return -1;
    int created;
    if (prepare_out(o->out_dir, &created, err)) return -1;
    char out[PATH_MAX];
    int rc = realpath(o->out_dir, out) ? build(o, out, loaded, err)
                                       : ls_fail(err, LS_EIO, "%s: %s", o->out_dir, strerror(errno));
    if (rc == 0) return 0;
    /* Everything inside was written by us (the folder was new or empty): remove it all. */
    nftw(o->out_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (!created) mkdir(o->out_dir, 0755);
    return -1;
}
