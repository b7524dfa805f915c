/* avatar_io.c - whole-file reads and JPEG/PNG decoding (TurboJPEG, libspng) for avatar frames. */
#include "avatar/avatar_io.h"

#include <errno.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#define MAX_IMAGE_FILE ((size_t)256 << 20)

/* Reads into *buf (grown with realloc to *cap); returns the length or -1. */
static long read_into(const char *path, size_t max, uint8_t **buf, size_t *cap, ls_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ls_fail(err, errno == ENOENT ? LS_ENOTFOUND : LS_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ls_fail(err, LS_EIO, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > max) {
        fclose(f);
        return ls_fail(err, LS_EFORMAT, "%s: %lld bytes is more than the %zu allowed", path,
                       (long long)st.st_size, max);
    }
    size_t need = (size_t)st.st_size + 1;
    if (need > *cap) {
        uint8_t *p = realloc(*buf, need);
        if (!p) {
            fclose(f);
            return ls_fail(err, LS_ENOMEM, "%s: out of memory", path);
        }
        *buf = p;
        *cap = need;
    }
    size_t n = fread(*buf, 1, (size_t)st.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n != (size_t)st.st_size) return ls_fail(err, LS_EIO, "%s: read error", path);
    (*buf)[n] = 0;
    return (long)n;
}

char *avatar_read_file(const char *path, size_t max, size_t *len, ls_err *err) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    long n = read_into(path, max, &buf, &cap, err);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    if (len) *len = (size_t)n;
    return (char *)buf;
}

int avatar_decoder_init(avatar_decoder *d, ls_err *err) {
    memset(d, 0, sizeof *d);
    d->tj = tjInitDecompress();
    if (!d->tj) return ls_fail(err, LS_ENOMEM, "cannot create a JPEG decoder");
    return 0;
}

void avatar_decoder_free(avatar_decoder *d) {
    if (d->tj) tjDestroy(d->tj);
    free(d->file);
    memset(d, 0, sizeof *d);
}

static int is_jpeg(const uint8_t *p, long n) { return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF; }
static int is_png(const uint8_t *p, long n) { return n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8); }

/* Reads the file and its size; *kind = 'j' or 'p'. For PNG, *ctx is left open for decoding. */
static long open_image(avatar_decoder *d, const char *path, int *w, int *h, char *kind,
                       spng_ctx **ctx, ls_err *err) {
    long n = read_into(path, MAX_IMAGE_FILE, &d->file, &d->cap, err);
    if (n < 0) return -1;
    if (is_jpeg(d->file, n)) {
        int sub, cs;
        *kind = 'j';
        if (tjDecompressHeader3(d->tj, d->file, (unsigned long)n, w, h, &sub, &cs) != 0)
            return ls_fail(err, LS_EFORMAT, "%s: bad JPEG: %s", path, tjGetErrorStr2(d->tj));
        return n;
    }
    if (!is_png(d->file, n)) return ls_fail(err, LS_EFORMAT, "%s: neither a JPEG nor a PNG file", path);
    *kind = 'p';
    *ctx = spng_ctx_new(0);
    if (!*ctx) return ls_fail(err, LS_ENOMEM, "cannot create a PNG decoder");
    struct spng_ihdr ihdr;
    int rc = spng_set_image_limits(*ctx, 1u << 14, 1u << 14);
    if (!rc) rc = spng_set_png_buffer(*ctx, d->file, (size_t)n);
    if (!rc) rc = spng_get_ihdr(*ctx, &ihdr);
    if (rc) return ls_fail(err, LS_EFORMAT, "%s: bad PNG: %s", path, spng_strerror(rc));
    *w = (int)ihdr.width;
    *h = (int)ihdr.height;
    return n;
}

int avatar_image_size(avatar_decoder *d, const char *path, int *width, int *height, ls_err *err) {
    spng_ctx *ctx = NULL;
    char kind;
    long n = open_image(d, path, width, height, &kind, &ctx, err);
    spng_ctx_free(ctx);
    return n < 0 ? -1 : 0;
}

int avatar_decode_image(avatar_decoder *d, const char *path, uint8_t *dst, int width, int height,
                        ls_err *err) {
    spng_ctx *ctx = NULL;
    char kind = 0; /* set by open_image on success; -O3 cannot see that */
    int w = 0, h = 0, rc = 0;
    long n = open_image(d, path, &w, &h, &kind, &ctx, err);
    if (n < 0) rc = -1;
    else if (w != width || h != height)
        rc = ls_fail(err, LS_EFORMAT, "%s: image is %dx%d, expected %dx%d", path, w, h, width, height);
    else if (kind == 'j') {
        /* Flags 0: accurate integer DCT and fancy upsampling, as cv2.imread decodes. A warning
         * (e.g. truncated data) also fails: a damaged frame would be rendered forever. */
        if (tjDecompress2(d->tj, d->file, (unsigned long)n, dst, width, width * 3, height, TJPF_BGR,
                          TJFLAG_STOPONWARNING) != 0)
            rc = ls_fail(err, LS_EFORMAT, "%s: corrupt JPEG: %s", path, tjGetErrorStr2(d->tj));
    } else {
        size_t size = (size_t)width * height * 3;
        int e = spng_decode_image(ctx, dst, size, SPNG_FMT_RGB8, 0);
        if (e) rc = ls_fail(err, LS_EFORMAT, "%s: corrupt PNG: %s", path, spng_strerror(e));
        for (size_t i = 0; rc == 0 && i < size; i += 3) { /* RGB -> BGR */
            uint8_t t = dst[i];
            dst[i] = dst[i + 2];
            dst[i + 2] = t;
        }
    }
    spng_ctx_free(ctx);
    return rc;
}
