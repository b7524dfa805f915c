/* avatar_fixture.h - helpers for the avatar/media tests: temporary folders, JPEG frames written
 * with TurboJPEG, small text files. Test code only; aborts on setup failures (not on the code under
 * test) so a broken fixture can never pass silently. */
#ifndef LS_AVATAR_FIXTURE_H
#define LS_AVATAR_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

static inline void fx_die(const char *what) {
    fprintf(stderr, "fixture setup failed: %s\n", what);
    abort();
}

/* A fresh folder under $TMPDIR or /tmp; returns a static-lifetime malloc'd path. */
static inline char *fx_tempdir(const char *tag) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/ls_%s_XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    if (!d) fx_die("mkdtemp");
    return strdup(d);
}

static inline char *fx_path(const char *dir, const char *fmt, ...) {
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    char *p = malloc(strlen(dir) + strlen(rel) + 2);
    sprintf(p, "%s/%s", dir, rel);
    return p;
}

static inline void fx_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) fx_die(path);
}

static inline void fx_text(const char *path, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fx_write(path, buf, (size_t)n);
}

static inline void fx_mkdir(const char *path) {
    if (mkdir(path, 0755) != 0) fx_die(path);
}

/* Frame i's test pattern: B = 10 + 20 i, G = x, R = y (all mod 256). */
static inline void fx_pattern(unsigned char *bgr, int w, int h, int i) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = bgr + ((size_t)y * w + x) * 3;
            p[0] = (unsigned char)(10 + 20 * i);
            p[1] = (unsigned char)x;
            p[2] = (unsigned char)y;
        }
}

/* Writes the pattern for frame i as a JPEG (quality 95, 4:2:0) to path. */
static inline void fx_jpeg(const char *path, int w, int h, int i) {
    unsigned char *bgr = malloc((size_t)w * h * 3), *jpg = NULL;
    unsigned long size = 0;
    tjhandle tj = tjInitCompress();
    fx_pattern(bgr, w, h, i);
    if (!tj || tjCompress2(tj, bgr, w, w * 3, h, TJPF_BGR, &jpg, &size, TJSAMP_420, 95, 0) != 0)
        fx_die("tjCompress2");
    fx_write(path, jpg, size);
    tjFree(jpg);
    tjDestroy(tj);
    free(bgr);
}

/* An avatar folder with n JPEG frames (w x h) named frames/%04d.jpg, boxes [1,1,w-1,h-1] and a
 * manifest; frame_count in the manifest is `claimed` (normally n). */
static inline char *fx_avatar(int n, int claimed, int w, int h) {
    char *dir = fx_tempdir("avatar");
    char *frames = fx_path(dir, "frames");
    fx_mkdir(frames);
    for (int i = 0; i < n; i++) {
        char *p = fx_path(frames, "%04d.jpg", i);
        fx_jpeg(p, w, h, i);
        free(p);
    }
    char boxes[4096] = "[";
    for (int i = 0; i < claimed; i++)
        snprintf(boxes + strlen(boxes), sizeof boxes - strlen(boxes), "%s[1, 1, %d, %d]", i ? ", " : "",
                 w - 1, h - 1);
    strcat(boxes, "]");
    char *p = fx_path(dir, "crop_rects.json");
    fx_text(p, "%s\n", boxes);
    free(p);
    p = fx_path(dir, "manifest.json");
    fx_text(p,
            "{\"name\": \"t\", \"fps\": 25, \"width\": %d, \"height\": %d, \"frame_count\": %d,\n"
            " \"frames\": \"frames\", \"boxes\": \"crop_rects.json\",\n"
            " \"unet\": \"unet.onnx\", \"encoder\": \"../enc.onnx\"}\n",
            w, h, claimed);
    free(p);
    free(frames);
    return dir;
}

/* Removes the folder and frees its path. */
static inline void fx_rmtree(char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fx_die("rm -rf");
    free(dir);
}

#endif
