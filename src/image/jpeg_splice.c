/* jpeg_splice.c - splices a re-encoded face rectangle into a cached background JPEG
 * (contract in jpeg_splice.h; the libjpeg side is jpeg_splice_codec.c).
 *
 * Why this works byte for byte: at a restart marker the encoder resets DC prediction and pads to a
 * byte, so an entropy-coded segment depends only on the pixels of its own MCUs. 4:2:0 chroma is
 * averaged within each 2x2 block (no smoothing), colour conversion is per pixel and edge padding
 * depends only on the edge MCUs, so a sub-image that starts on a segment boundary and ends on one
 * (or on the image edge) encodes to exactly the segments a full encode would produce there - except
 * that its RSTn count from 0, which we rewrite. No library exposes segment-level re-encoding, hence
 * the hand-written marker walk and assembly (a few microseconds; the sub-image encode is the cost). */
#include "image/jpeg_splice.h"

#include <stdlib.h>
#include <string.h>

#include "image/jpeg_splice_codec.h"

#define MCU 16 /* MCU size in pixels at 4:2:0 */

struct jsplice_background {
    int width, height, quality, restart;
    int mcu_cols, mcu_rows;
    size_t nseg;
    uint8_t *jpeg;
    size_t len;
    size_t *seg; /* seg[k]: first entropy byte of segment k; seg[nseg] = len. Segment k with its
                    trailing RST/EOI marker is jpeg[seg[k] .. seg[k+1]). */
};

struct jsplice_encoder {
    jsplice_codec codec;
    int max_width, max_height;
    uint8_t *sub;      /* the sub-image's JPEG */
    size_t sub_cap;
    size_t *sub_seg;   /* its segment index, as bg->seg */
    size_t sub_seg_cap;
};

/* The re-encoded rectangle in MCUs: columns [c0, c1), rows [r0, r1). */
typedef struct plan {
    int c0, c1, r0, r1;
} plan;

static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

size_t jsplice_max_jpeg_size(int width, int height, int restart_mcus) {
    if (width < 1 || height < 1 || width > 65500 || height > 65500 || restart_mcus < 1) return 0;
    size_t w = (size_t)ceil_div(width, MCU) * MCU, h = (size_t)ceil_div(height, MCU) * MCU;
    size_t mcus = (w / MCU) * (h / MCU);
    return w * h * 3 + 2 * (mcus / (size_t)restart_mcus + 1) + 2048;
}

/* Offset of the first entropy-coded byte: after SOI, walk length-prefixed marker segments through
 * SOS. 0 when the stream is not shaped that way. */
static size_t entropy_start(const uint8_t *j, size_t n) {
    if (n < 4 || j[0] != 0xFF || j[1] != 0xD8) return 0;
    for (size_t p = 2; p + 4 <= n;) {
        uint8_t marker = j[p + 1];
        size_t len = (size_t)j[p + 2] << 8 | j[p + 3];
        if (j[p] != 0xFF || len < 2 || p + 2 + len > n) return 0;
        p += 2 + len;
        if (marker == 0xDA) return p;
    }
    return 0;
}

/* Indexes the segments that start at `start`: seg[0..count] as in jsplice_background. Each must end
 * in RST(k mod 8) or, for the last, EOI at the very end; libjpeg writes no fill bytes, so markers
 * follow the data directly. FF 00 is a stuffed data byte. Returns count, or 0 when malformed or
 * more than cap - 1 segments. */
static size_t index_segments(const uint8_t *j, size_t n, size_t start, size_t *seg, size_t cap) {
    size_t count = 0;
    seg[0] = start;
    for (size_t p = start;;) {
        const uint8_t *f = memchr(j + p, 0xFF, n - p);
        if (!f || (size_t)(f - j) + 1 >= n) return 0;
        p = (size_t)(f - j);
        uint8_t m = j[p + 1];
        p += 2;
        if (m == 0x00) continue;
        if (count + 1 >= cap) return 0;
        seg[++count] = p;
        if (m == 0xD9) return p == n ? count : 0;
        if (m != 0xD0 + ((count - 1) & 7)) return 0;
    }
}

jsplice_background *jsplice_background_create(const uint8_t *bgr, int width, int height, int stride,
                                              int quality, int restart_mcus, ls_err *err) {
    size_t cap = jsplice_max_jpeg_size(width, height, restart_mcus);
    if (!cap) {
        ls_fail(err, LS_EINVAL, "jpeg splice: background %dx%d, restart %d invalid", width, height, restart_mcus);
        return NULL;
    }
    jsplice_background *bg = calloc(1, sizeof *bg);
    jsplice_codec *codec = malloc(sizeof *codec);
    uint8_t *tmp = malloc(cap);
    if (!bg || !codec || !tmp) {
        ls_fail(err, LS_ENOMEM, "jpeg splice: cannot allocate %zu bytes for a background", cap);
        goto fail_nocodec;
    }
    if (jsplice_codec_init(codec, width, err)) goto fail_nocodec;
    if (jsplice_codec_encode(codec, bgr, width, height, stride, quality, restart_mcus, 0, tmp, cap,
                             &bg->len, err))
        goto fail;
    bg->width = width, bg->height = height, bg->quality = quality, bg->restart = restart_mcus;
    bg->mcu_cols = ceil_div(width, MCU), bg->mcu_rows = ceil_div(height, MCU);
    size_t expect = ((size_t)bg->mcu_cols * (size_t)bg->mcu_rows + (size_t)restart_mcus - 1) / (size_t)restart_mcus;
    bg->jpeg = malloc(bg->len);
    bg->seg = malloc((expect + 1) * sizeof *bg->seg);
    if (!bg->jpeg || !bg->seg) {
        ls_fail(err, LS_ENOMEM, "jpeg splice: cannot allocate a background of %zu bytes", bg->len);
        goto fail;
    }
    memcpy(bg->jpeg, tmp, bg->len);
    size_t start = entropy_start(bg->jpeg, bg->len);
    bg->nseg = start ? index_segments(bg->jpeg, bg->len, start, bg->seg, expect + 1) : 0;
    if (bg->nseg != expect) {
        ls_fail(err, LS_EINTERNAL, "jpeg splice: background has %zu segments, expected %zu", bg->nseg, expect);
        goto fail;
    }
    jsplice_codec_free(codec);
    free(codec);
    free(tmp);
    return bg;
fail:
    jsplice_codec_free(codec);
fail_nocodec:
    free(codec);
    free(tmp);
    jsplice_background_free(bg);
    return NULL;
}

void jsplice_background_free(jsplice_background *bg) {
    if (!bg) return;
    free(bg->jpeg);
    free(bg->seg);
    free(bg);
}

const uint8_t *jsplice_background_jpeg(const jsplice_background *bg, size_t *len) {
    *len = bg->len;
    return bg->jpeg;
}
int jsplice_background_width(const jsplice_background *bg) { return bg->width; }
int jsplice_background_height(const jsplice_background *bg) { return bg->height; }
int jsplice_background_quality(const jsplice_background *bg) { return bg->quality; }
int jsplice_background_restart(const jsplice_background *bg) { return bg->restart; }

jsplice_encoder *jsplice_encoder_create(int max_width, int max_height, ls_err *err) {
    size_t cap = jsplice_max_jpeg_size(max_width, max_height, 1);
    if (!cap) {
        ls_fail(err, LS_EINVAL, "jpeg splice: encoder size %dx%d invalid", max_width, max_height);
        return NULL;
    }
    jsplice_encoder *enc = calloc(1, sizeof *enc);
    if (!enc) {
        ls_fail(err, LS_ENOMEM, "jpeg splice: cannot allocate an encoder");
        return NULL;
    }
    if (jsplice_codec_init(&enc->codec, max_width, err)) {
        free(enc);
        return NULL;
    }
    enc->max_width = max_width, enc->max_height = max_height;
    enc->sub_cap = cap;
    enc->sub_seg_cap = (size_t)ceil_div(max_width, MCU) * (size_t)ceil_div(max_height, MCU) + 1;
    enc->sub = malloc(enc->sub_cap);
    enc->sub_seg = malloc(enc->sub_seg_cap * sizeof *enc->sub_seg);
    if (!enc->sub || !enc->sub_seg) {
        jsplice_encoder_free(enc);
        ls_fail(err, LS_ENOMEM, "jpeg splice: cannot allocate %zu bytes of encoder scratch", cap);
        return NULL;
    }
    return enc;
}

void jsplice_encoder_free(jsplice_encoder *enc) {
    if (!enc) return;
    jsplice_codec_free(&enc->codec);
    free(enc->sub);
    free(enc->sub_seg);
    free(enc);
}

int jsplice_can_splice(const jsplice_background *bg, int width, int height, int quality, ls_box box) {
    return bg && width == bg->width && height == bg->height && quality == bg->quality &&
           box_inside(box, width, height);
}

/* Segments are runs of `restart` MCUs in raster order over the whole image. When a row holds a
 * whole number of them, a rectangle of whole segments can be cut out of each MCU row; otherwise
 * segments wrap across rows and the rectangle spans full rows, starting and ending on a row where
 * a segment starts (every `period` rows), or at the bottom edge. */
static int make_plan(const jsplice_background *bg, ls_box b, plan *p, ls_err *err) {
    if (!box_inside(b, bg->width, bg->height))
        return ls_fail(err, LS_EINVAL, "jpeg splice: box (%d,%d)-(%d,%d) not inside %dx%d", b.x1, b.y1,
                       b.x2, b.y2, bg->width, bg->height);
    const int n = bg->restart, cols = bg->mcu_cols;
    int period = 1;
    p->r0 = b.y1 / MCU, p->r1 = ceil_div(b.y2, MCU);
    if (cols % n == 0) {
        p->c0 = b.x1 / MCU / n * n;
        p->c1 = ceil_div(ceil_div(b.x2, MCU), n) * n;
    } else {
        p->c0 = 0, p->c1 = cols;
        period = n / gcd(cols, n);
    }
    p->r0 = p->r0 / period * period;
    p->r1 = ceil_div(p->r1, period) * period;
    if (p->r1 > bg->mcu_rows) p->r1 = bg->mcu_rows;
    return 0;
}

static ls_box plan_pixels(const jsplice_background *bg, const plan *p) {
    ls_box r = {p->c0 * MCU, p->r0 * MCU, p->c1 * MCU, p->r1 * MCU};
    if (r.x2 > bg->width) r.x2 = bg->width;
    if (r.y2 > bg->height) r.y2 = bg->height;
    return r;
}

int jsplice_region(const jsplice_background *bg, ls_box box, ls_box *region, ls_err *err) {
    plan p = {0}; /* filled by make_plan on success; -O3 cannot see that */
    if (make_plan(bg, box, &p, err)) return -1;
    *region = plan_pixels(bg, &p);
    return 0;
}

/* The global segments the sub-image covers, as ranges [*ga, *gb) in the order it encodes them:
 * one per MCU row, or a single range when it spans full rows. Returns the number of ranges. */
static int plan_ranges(const jsplice_background *bg, const plan *p) {
    return (p->c0 == 0 && p->c1 == bg->mcu_cols) ? 1 : p->r1 - p->r0;
}
static void plan_range(const jsplice_background *bg, const plan *p, int i, size_t *ga, size_t *gb) {
    size_t n = (size_t)bg->restart, cols = (size_t)bg->mcu_cols;
    if (p->c0 == 0 && p->c1 == bg->mcu_cols) {
        *ga = (size_t)p->r0 * cols / n;
        *gb = ((size_t)p->r1 * cols + n - 1) / n;
    } else {
        size_t row = (size_t)(p->r0 + i) * cols;
        *ga = (row + (size_t)p->c0) / n;
        *gb = (row + (size_t)p->c1) / n;
    }
}

/* Writes header + cached runs + renumbered sub-image segments + EOI. The sub-image has nsub
 * segments indexed in enc->sub_seg. Returns 0, or -1 when out_cap is too small. */
static int assemble(const jsplice_encoder *enc, const jsplice_background *bg, const plan *p,
                    size_t nsub, uint8_t *out, size_t out_cap, size_t *out_len, ls_err *err) {
    const int nr = plan_ranges(bg, p);
    size_t total = bg->len, ga, gb;
    for (int i = 0; i < nr; i++) {
        plan_range(bg, p, i, &ga, &gb);
        total -= bg->seg[gb] - bg->seg[ga];
    }
    total += enc->sub_seg[nsub] - enc->sub_seg[0]; /* same marker count: one per segment */
    if (total > out_cap)
        return ls_fail(err, LS_ENOMEM, "jpeg splice: output needs %zu bytes, buffer has %zu", total, out_cap);

    size_t pos = bg->seg[0], next = 0, j = 0; /* next: first background segment not yet copied */
    memcpy(out, bg->jpeg, bg->seg[0]);       /* SOI .. SOS */
    for (int i = 0; i < nr; i++) {
        plan_range(bg, p, i, &ga, &gb);
        memcpy(out + pos, bg->jpeg + bg->seg[next], bg->seg[ga] - bg->seg[next]);
        pos += bg->seg[ga] - bg->seg[next];
        for (size_t g = ga; g < gb; g++, j++) {
            size_t data = enc->sub_seg[j + 1] - 2 - enc->sub_seg[j]; /* without its marker */
            memcpy(out + pos, enc->sub + enc->sub_seg[j], data);
            pos += data;
            out[pos++] = 0xFF;
            out[pos++] = g + 1 < bg->nseg ? (uint8_t)(0xD0 + (g & 7)) : 0xD9; /* RSTn are global */
        }
        next = gb;
    }
    memcpy(out + pos, bg->jpeg + bg->seg[next], bg->len - bg->seg[next]); /* ends with EOI */
    pos += bg->len - bg->seg[next];
    *out_len = pos;
    return 0;
}

int jsplice_encode(jsplice_encoder *enc, const jsplice_background *bg, const uint8_t *frame_bgr,
                   int stride, ls_box box, uint8_t *out, size_t out_cap, size_t *out_len, ls_err *err) {
    if (!enc || !bg || !frame_bgr || !out || !out_len)
        return ls_fail(err, LS_EINVAL, "jpeg splice: NULL argument");
    if (bg->width > enc->max_width || bg->height > enc->max_height)
        return ls_fail(err, LS_EINVAL, "jpeg splice: %dx%d frame exceeds the encoder's %dx%d", bg->width,
                       bg->height, enc->max_width, enc->max_height);
    if (stride < 3 * bg->width) return ls_fail(err, LS_EINVAL, "jpeg splice: stride %d < 3*%d", stride, bg->width);
    plan p = {0};
    if (make_plan(bg, box, &p, err)) return -1;
    ls_box r = plan_pixels(bg, &p);
    const uint8_t *origin = frame_bgr + (size_t)r.y1 * (size_t)stride + (size_t)r.x1 * 3;
    size_t sub_len;
    if (jsplice_codec_encode(&enc->codec, origin, r.x2 - r.x1, r.y2 - r.y1, stride, bg->quality, bg->restart,
                             1, enc->sub, enc->sub_cap, &sub_len, err))
        return -1;

    size_t expect = 0, ga, gb;
    for (int i = 0; i < plan_ranges(bg, &p); i++) {
        plan_range(bg, &p, i, &ga, &gb);
        expect += gb - ga;
    }
    size_t start = entropy_start(enc->sub, sub_len);
    size_t nsub = start ? index_segments(enc->sub, sub_len, start, enc->sub_seg, enc->sub_seg_cap) : 0;
    if (nsub != expect)
        return ls_fail(err, LS_EINTERNAL, "jpeg splice: sub-image has %zu segments, expected %zu", nsub, expect);
    return assemble(enc, bg, &p, nsub, out, out_cap, out_len, err);
}

int jsplice_encode_full(jsplice_encoder *enc, const uint8_t *bgr, int width, int height, int stride,
                        int quality, int restart_mcus, uint8_t *out, size_t out_cap, size_t *out_len,
                        ls_err *err) {
    if (!enc) return ls_fail(err, LS_EINVAL, "jpeg splice: NULL encoder");
    if (height > enc->max_height)
        return ls_fail(err, LS_EINVAL, "jpeg splice: height %d exceeds the encoder's %d", height, enc->max_height);
    return jsplice_codec_encode(&enc->codec, bgr, width, height, stride, quality, restart_mcus, 0, out,
                                out_cap, out_len, err);
}
