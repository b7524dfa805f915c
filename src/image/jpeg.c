/* jpeg.c - TurboJPEG encoder with a pre-sized output buffer (see jpeg.h). */
#include "image/jpeg.h"

#include <limits.h>
#include <stdlib.h>
#include <turbojpeg.h>

struct jpeg_enc {
    tjhandle tj;
    unsigned char *buf;   /* tjAlloc'd, tjBufSize(max_w, max_h, 4:2:0) bytes */
    int max_w, max_h;
    int quality;
    unsigned long len;    /* bytes of the last encoded image */
};

int jpeg_enc_set_quality(jpeg_enc *e, int quality, ls_err *err) {
    if (quality < 1 || quality > 100)
        return ls_fail(err, LS_EINVAL, "JPEG quality %d is outside 1..100", quality);
    e->quality = quality;
    return 0;
}

jpeg_enc *jpeg_enc_create(int max_w, int max_h, int quality, ls_err *err) {
    if (max_w < 1 || max_h < 1 || max_w > JPEG_MAX_SIDE || max_h > JPEG_MAX_SIDE) {
        ls_fail(err, LS_EINVAL, "JPEG encoder: max size %dx%d is outside 1..%d", max_w, max_h,
                JPEG_MAX_SIDE);
        return NULL;
    }
    jpeg_enc *e = calloc(1, sizeof *e);
    if (!e) {
        ls_fail(err, LS_ENOMEM, "JPEG encoder: out of memory");
        return NULL;
    }
    if (jpeg_enc_set_quality(e, quality, err)) {
        free(e);
        return NULL;
    }
    e->max_w = max_w, e->max_h = max_h;
    unsigned long cap = tjBufSize(max_w, max_h, TJSAMP_420);
    e->tj = tjInitCompress();
    e->buf = cap == (unsigned long)-1 ? NULL : tjAlloc((int)cap);
    if (!e->tj || !e->buf) {
        ls_fail(err, LS_ENOMEM, "JPEG encoder: cannot set up TurboJPEG for %dx%d (%lu bytes)",
                max_w, max_h, cap);
        jpeg_enc_destroy(e);
        return NULL;
    }
    return e;
}

void jpeg_enc_destroy(jpeg_enc *e) {
    if (!e) return;
    if (e->tj) tjDestroy(e->tj);
    tjFree(e->buf);
    free(e);
}

int jpeg_encode_bgr(jpeg_enc *e, const uint8_t *bgr, int w, int h, size_t stride,
                    const uint8_t **out, size_t *out_len, ls_err *err) {
    if (!e || !bgr || !out || !out_len) return ls_fail(err, LS_EINVAL, "JPEG encode: NULL argument");
    if (w < 1 || h < 1 || w > e->max_w || h > e->max_h)
        return ls_fail(err, LS_EINVAL, "JPEG encode: %dx%d is outside 1x1..%dx%d", w, h, e->max_w,
                       e->max_h);
    if (stride < (size_t)w * 3 || stride > (size_t)INT_MAX)
        return ls_fail(err, LS_EINVAL, "JPEG encode: stride %zu does not fit width %d", stride, w);
    /* With TJFLAG_NOREALLOC TurboJPEG writes into e->buf, which holds tjBufSize(max) >=
     * tjBufSize(w, h) bytes; it sets len itself. */
    unsigned char *buf = e->buf;
    e->len = 0;
    if (tjCompress2(e->tj, bgr, w, (int)stride, h, TJPF_BGR, &buf, &e->len, TJSAMP_420, e->quality,
                    TJFLAG_NOREALLOC) != 0)
        return ls_fail(err, LS_EINTERNAL, "JPEG encode %dx%d: %s", w, h, tjGetErrorStr2(e->tj));
    *out = e->buf;
    *out_len = e->len;
    return 0;
}
