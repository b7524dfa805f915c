/* imgfile.c - JPEG (TurboJPEG) and PNG (libspng) files <-> packed BGR (see imgfile.h). */
#include "image/imgfile.h"

#include <errno.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "image/jpeg.h"

static int dims_ok(long w, long h, const char *kind, ls_err *err) {
    if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE)
        return ls_fail(err, LS_EFORMAT, "%s is %ldx%ld; sizes from 1 to %d per side are accepted",
                       kind, w, h, IMG_MAX_SIDE);
    return 0;
}

static uint8_t *decode_jpeg(const uint8_t *bytes, size_t len, int *w, int *h, ls_err *err) {
    if (len > (unsigned long)-1) {
        ls_fail(err, LS_EFORMAT, "JPEG of %zu bytes is too large", len);
        return NULL;
    }
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        ls_fail(err, LS_ENOMEM, "JPEG: cannot create a TurboJPEG decompressor");
        return NULL;
    }
    uint8_t *px = NULL;
    int iw, ih, subsamp, colorspace;
    if (tjDecompressHeader3(tj, bytes, (unsigned long)len, &iw, &ih, &subsamp, &colorspace) != 0) {
        ls_fail(err, LS_EFORMAT, "JPEG header: %s", tjGetErrorStr2(tj));
    } else if (dims_ok(iw, ih, "JPEG", err) == 0) {
        px = malloc((size_t)iw * (size_t)ih * 3);
        if (!px) {
            ls_fail(err, LS_ENOMEM, "JPEG: no memory for %dx%d pixels", iw, ih);
        } else if (tjDecompress2(tj, bytes, (unsigned long)len, px, iw, 0, ih, TJPF_BGR,
                                 TJFLAG_STOPONWARNING) != 0) {
            /* STOPONWARNING: truncated data ("Premature end of JPEG file") is an error. */
            ls_fail(err, LS_EFORMAT, "JPEG %dx%d: %s", iw, ih, tjGetErrorStr2(tj));
            free(px);
            px = NULL;
        } else {
            *w = iw, *h = ih;
        }
    }
    tjDestroy(tj);
    return px;
}

static uint8_t *decode_png(const uint8_t *bytes, size_t len, int *w, int *h, ls_err *err) {
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) {
        ls_fail(err, LS_ENOMEM, "PNG: cannot create a decoder");
        return NULL;
    }
    uint8_t *rgba = NULL, *px = NULL;
    struct spng_ihdr ihdr;
    size_t size = 0;
    int rc = spng_set_image_limits(ctx, IMG_MAX_SIDE, IMG_MAX_SIDE);
    if (!rc) rc = spng_set_chunk_limits(ctx, 64u << 20, 64u << 20);
    if (!rc) rc = spng_set_png_buffer(ctx, bytes, len);
    if (!rc) rc = spng_get_ihdr(ctx, &ihdr);
    if (rc) {
        ls_fail(err, LS_EFORMAT, "PNG header: %s", spng_strerror(rc));
        goto out;
    }
    if (dims_ok(ihdr.width, ihdr.height, "PNG", err)) goto out;
    /* RGBA8 is the output format libspng converts every PNG type and depth to; alpha is dropped. */
    rc = spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &size);
    if (!rc && !(rgba = malloc(size))) {
        ls_fail(err, LS_ENOMEM, "PNG: no memory for %zu bytes", size);
        goto out;
    }
    if (!rc) rc = spng_decode_image(ctx, rgba, size, SPNG_FMT_RGBA8, 0);
    if (rc) {
        ls_fail(err, LS_EFORMAT, "PNG %ux%u: %s", ihdr.width, ihdr.height, spng_strerror(rc));
        goto out;
    }
    size_t n = (size_t)ihdr.width * ihdr.height;
    if (!(px = malloc(n * 3))) {
        ls_fail(err, LS_ENOMEM, "PNG: no memory for %zu pixels", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        px[3 * i + 0] = rgba[4 * i + 2];
        px[3 * i + 1] = rgba[4 * i + 1];
        px[3 * i + 2] = rgba[4 * i + 0];
    }
    *w = (int)ihdr.width, *h = (int)ihdr.height;
out:
    free(rgba);
    spng_ctx_free(ctx);
    return px;
}

uint8_t *img_decode_bgr(const void *bytes, size_t len, int *w, int *h, ls_err *err) {
    const uint8_t *b = bytes;
    if (!b || !w || !h) {
        ls_fail(err, LS_EINVAL, "image decode: NULL argument");
        return NULL;
    }
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return decode_jpeg(b, len, w, h, err);
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(b, len, w, h, err);
    ls_fail(err, LS_EFORMAT, "not a JPEG or PNG image (%zu bytes)", len);
    return NULL;
}

uint8_t *img_load_bgr(const char *path, int *w, int *h, ls_err *err) {
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        ls_fail(err, LS_EIO, "%s: %s", path ? path : "(null)", strerror(errno));
        return NULL;
    }
    uint8_t *bytes = NULL, *px = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        ls_fail(err, LS_EIO, "%s: cannot determine the size", path);
    } else if ((unsigned long)size > IMG_MAX_FILE_BYTES) {
        ls_fail(err, LS_EFORMAT, "%s: %ld bytes, larger than the %u accepted", path, size,
                IMG_MAX_FILE_BYTES);
    } else if (!(bytes = malloc(size ? (size_t)size : 1))) {
        ls_fail(err, LS_ENOMEM, "%s: no memory for %ld bytes", path, size);
    } else if (fread(bytes, 1, (size_t)size, f) != (size_t)size) {
        ls_fail(err, LS_EIO, "%s: short read", path);
    } else if (!(px = img_decode_bgr(bytes, (size_t)size, w, h, err))) {
        ls_wrap(err, "%s", path);
    }
    free(bytes);
    fclose(f);
    return px;
}

static int check_image_args(const char *path, const uint8_t *bgr, int w, int h, size_t stride,
                            ls_err *err) {
    if (!path || !bgr) return ls_fail(err, LS_EINVAL, "image write: NULL argument");
    if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || stride < (size_t)w * 3)
        return ls_fail(err, LS_EINVAL, "image write %s: bad size %dx%d or stride %zu", path, w, h,
                       stride);
    return 0;
}

void img_bgr_to_rgb(const uint8_t *bgr, size_t stride, int w, int h, uint8_t *dst) {
    for (int y = 0; y < h; y++) {
        const uint8_t *s = bgr + (size_t)y * stride;
        uint8_t *d = dst + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) d[3 * x] = s[3 * x + 2], d[3 * x + 1] = s[3 * x + 1], d[3 * x + 2] = s[3 * x];
    }
}

int img_write_png(const char *path, const uint8_t *bgr, int w, int h, size_t stride, ls_err *err) {
    if (check_image_args(path, bgr, w, h, stride, err)) return -1;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) return ls_fail(err, LS_ENOMEM, "%s: no memory", path);
    img_bgr_to_rgb(bgr, stride, w, h, rgb);
    FILE *f = fopen(path, "wb");
    spng_ctx *ctx = f ? spng_ctx_new(SPNG_CTX_ENCODER) : NULL;
    int ret = -1, rc = -1;
    if (!f) {
        ls_fail(err, LS_EIO, "%s: %s", path, strerror(errno));
    } else if (!ctx) {
        ls_fail(err, LS_ENOMEM, "%s: cannot create a PNG encoder", path);
    } else {
        struct spng_ihdr ihdr = {(uint32_t)w, (uint32_t)h, 8, SPNG_COLOR_TYPE_TRUECOLOR, 0, 0, 0};
        rc = spng_set_png_file(ctx, f);
        if (!rc) rc = spng_set_ihdr(ctx, &ihdr);
        if (!rc) rc = spng_encode_image(ctx, rgb, (size_t)w * h * 3, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
        if (rc) ls_fail(err, LS_EIO, "%s: PNG encode: %s", path, spng_strerror(rc));
    }
    spng_ctx_free(ctx);
    if (f && fclose(f) != 0 && !rc) rc = ls_fail(err, LS_EIO, "%s: %s", path, strerror(errno));
    if (f && !rc) ret = 0;
    free(rgb);
    return ret;
}

int img_write_jpeg(const char *path, const uint8_t *bgr, int w, int h, size_t stride, int quality,
                   ls_err *err) {
    if (check_image_args(path, bgr, w, h, stride, err)) return -1;
    jpeg_enc *e = jpeg_enc_create(w, h, quality, err);
    if (!e) return ls_wrap(err, "%s", path);
    const uint8_t *jpg;
    size_t len;
    int ret = -1;
    if (jpeg_encode_bgr(e, bgr, w, h, stride, &jpg, &len, err) == 0) {
        FILE *f = fopen(path, "wb");
        if (!f) ls_fail(err, LS_EIO, "%s: %s", path, strerror(errno));
        else if (fwrite(jpg, 1, len, f) != len) ls_fail(err, LS_EIO, "%s: short write", path);
        else ret = 0;
        if (f && fclose(f) != 0 && ret == 0) ret = ls_fail(err, LS_EIO, "%s: %s", path, strerror(errno));
    } else {
        ls_wrap(err, "%s", path);
    }
    jpeg_enc_destroy(e);
    return ret;
}
