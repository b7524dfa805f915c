/* test_jpeg_splice.c - the incremental JPEG encoder (src/image/jpeg_splice.h).
 *
 * The reference for every frame is an independent plain-libjpeg encode of the composited frame
 * with the same settings and restart interval (tests/jpeg_splice_util.h). Spliced output must be
 * byte-identical to it (tolerance: none), decode with TurboJPEG in strict mode
 * (TJFLAG_STOPONWARNING: a wrong RST number is a warning there) to exactly the reference's pixels,
 * and pass a marker walk that checks RST numbering independently of the module. FFmpeg's MJPEG
 * decoder must accept it too (it ignores RST numbers, so it is a second decoder, not a check of
 * them). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <turbojpeg.h>

#include "check.h"
#include "image/jpeg_splice.h"
#include "jpeg_splice_util.h"

/* One avatar: background, frame buffer, encoder and output sized for it. */
typedef struct fixture {
    int w, h, stride, quality, restart;
    uint8_t *bg_img, *frame, *face, *out;
    size_t out_cap;
    jsplice_background *bg;
    jsplice_encoder *enc;
    tjhandle tj;
    uint8_t *pix_a, *pix_b;
} fixture;

static int fixture_init(fixture *f, int w, int h, int quality, int restart, uint32_t seed) {
    ls_err e = {0};
    memset(f, 0, sizeof *f);
    f->w = w, f->h = h, f->stride = 3 * w + 7, f->quality = quality, f->restart = restart; /* odd stride */
    size_t n = (size_t)f->stride * h;
    f->bg_img = malloc(n), f->frame = malloc(n), f->face = malloc(n);
    f->out_cap = jsplice_max_jpeg_size(w, h, restart);
    f->out = malloc(f->out_cap);
    f->pix_a = malloc((size_t)w * h * 3), f->pix_b = malloc((size_t)w * h * 3);
    ju_photo(f->bg_img, w, h, f->stride, seed);
    ju_photo(f->face, w, h, f->stride, seed * 7 + 1);
    f->bg = jsplice_background_create(f->bg_img, w, h, f->stride, quality, restart, &e);
    f->enc = jsplice_encoder_create(w, h, &e);
    f->tj = tjInitDecompress();
    if (!f->bg || !f->enc) fprintf(stderr, "fixture: %s\n", e.msg);
    return f->bg && f->enc && f->tj ? 0 : -1;
}

static void fixture_free(fixture *f) {
    jsplice_background_free(f->bg);
    jsplice_encoder_free(f->enc);
    if (f->tj) tjDestroy(f->tj);
    free(f->bg_img), free(f->frame), free(f->face), free(f->out), free(f->pix_a), free(f->pix_b);
}

/* frame = background with box filled from `face` (noise when use_noise, to stress byte stuffing). */
static void composite(fixture *f, ls_box b, int use_noise, uint32_t seed) {
    memcpy(f->frame, f->bg_img, (size_t)f->stride * f->h);
    if (use_noise) ju_noise(f->face, f->w, f->h, f->stride, seed);
    for (int y = b.y1; y < b.y2; y++)
        memcpy(f->frame + (size_t)y * f->stride + b.x1 * 3, f->face + (size_t)y * f->stride + b.x1 * 3,
               (size_t)(b.x2 - b.x1) * 3);
}

/* Independent of the module: walks header markers by length (checking SOF0 4:2:0 and DRI), then
 * the entropy data, counting RSTn that must run 0,1,..,7,0,..; returns the RST count, -1 if bad. */
static long marker_walk(const uint8_t *j, size_t n, int restart) {
    if (n < 4 || j[0] != 0xFF || j[1] != 0xD8) return -1;
    size_t p = 2;
    int sof = 0, dri = -1;
    for (;;) {
        if (p + 4 > n || j[p] != 0xFF) return -1;
        uint8_t m = j[p + 1];
        size_t len = (size_t)j[p + 2] << 8 | j[p + 3];
        if (m == 0xC0) sof = j[p + 11] == 0x22 && j[p + 14] == 0x11 && j[p + 17] == 0x11;
        if (m == 0xC1 || m == 0xC2) return -1; /* must be baseline */
        if (m == 0xDD) dri = j[p + 4] << 8 | j[p + 5];
        p += 2 + len;
        if (m == 0xDA) break;
    }
    if (!sof || dri != restart) return -1;
    long rst = 0;
    for (; p + 1 < n; p++) {
        if (j[p] != 0xFF || j[p + 1] == 0x00) continue;
        if (j[p + 1] == 0xD9) return p + 2 == n ? rst : -1;
        if (j[p + 1] != 0xD0 + (rst & 7)) return -1;
        rst++, p++;
    }
    return -1;
}

/* Splices the current frame and checks it against the reference; 0 when all agree. */
static int check_frame(fixture *f, ls_box b, const char *what) {
    ls_err e = {0};
    size_t len = 0;
    if (jsplice_encode(f->enc, f->bg, f->frame, f->stride, b, f->out, f->out_cap, &len, &e)) {
        fprintf(stderr, "  %s: encode failed: %s\n", what, e.msg);
        return -1;
    }
    unsigned long ref_len;
    uint8_t *ref = ju_reference_encode(f->frame, f->w, f->h, f->stride, f->quality, f->restart, &ref_len);
    int bad = len != ref_len || memcmp(f->out, ref, len) != 0;
    if (bad) fprintf(stderr, "  %s box (%d,%d)-(%d,%d): %zu bytes vs reference %lu, differ\n", what,
                     b.x1, b.y1, b.x2, b.y2, len, ref_len);
    size_t mcus = (size_t)((f->w + 15) / 16) * (size_t)((f->h + 15) / 16);
    long want_rst = (long)((mcus + f->restart - 1) / f->restart) - 1;
    long rst = marker_walk(f->out, len, f->restart);
    if (!bad && rst != want_rst) {
        fprintf(stderr, "  %s: marker walk found %ld RSTs, want %ld\n", what, rst, want_rst);
        bad = 1;
    }
    if (!bad && (tjDecompress2(f->tj, f->out, len, f->pix_a, f->w, 0, f->h, TJPF_BGR, TJFLAG_STOPONWARNING) ||
                 tjDecompress2(f->tj, ref, ref_len, f->pix_b, f->w, 0, f->h, TJPF_BGR, TJFLAG_STOPONWARNING) ||
                 memcmp(f->pix_a, f->pix_b, (size_t)f->w * f->h * 3) != 0)) {
        fprintf(stderr, "  %s: strict decode failed or pixels differ: %s\n", what, tjGetErrorStr2(f->tj));
        bad = 1;
    }
    free(ref);
    return bad ? -1 : 0;
}

static int check_boxes(int w, int h, int restart, const ls_box *boxes, int n) {
    fixture f;
    int bad = fixture_init(&f, w, h, 75, restart, (uint32_t)(w * 31 + h + restart));
    for (int i = 0; !bad && i < n; i++) {
        composite(&f, boxes[i], i & 1, (uint32_t)i);
        bad = check_frame(&f, boxes[i], "fixed");
    }
    fixture_free(&f);
    return bad;
}

TEST(background_is_the_reference_full_encode) {
    fixture f;
    CHECK(fixture_init(&f, 1280, 720, 75, 4, 1) == 0, "fixture");
    size_t len;
    const uint8_t *j = jsplice_background_jpeg(f.bg, &len);
    unsigned long ref_len;
    uint8_t *ref = ju_reference_encode(f.bg_img, 1280, 720, f.stride, 75, 4, &ref_len);
    int same = len == ref_len && memcmp(j, ref, len) == 0;
    free(ref);
    fixture_free(&f);
    CHECK(same, "background JPEG must equal a plain libjpeg encode, byte for byte");
}

TEST(encode_full_matches_reference_at_odd_sizes) {
    const int sizes[][3] = {{1280, 720, 4}, {1920, 1080, 8}, {1080, 1920, 8}, {1001, 777, 3}, {17, 9, 1}, {16, 16, 4}};
    for (int i = 0; i < 6; i++) {
        fixture f;
        CHECK(fixture_init(&f, sizes[i][0], sizes[i][1], 75, sizes[i][2], 9) == 0, "fixture");
        size_t len;
        ls_err e;
        int rc = jsplice_encode_full(f.enc, f.face, f.w, f.h, f.stride, 75, f.restart, f.out, f.out_cap, &len, &e);
        unsigned long ref_len;
        uint8_t *ref = ju_reference_encode(f.face, f.w, f.h, f.stride, 75, f.restart, &ref_len);
        int same = rc == 0 && len == ref_len && memcmp(f.out, ref, len) == 0;
        free(ref);
        fixture_free(&f);
        CHECK(same, "%dx%d restart %d: full encode differs from the reference", sizes[i][0], sizes[i][1], sizes[i][2]);
    }
}

/* Centre, corners, edges, odd and tiny sizes, full-width and full-height stripes, whole frame. */
static int edge_boxes(int w, int h, ls_box *b) {
    ls_box all[] = {
        {w / 2 - 90, h / 2 - 90, w / 2 + 90, h / 2 + 90}, {0, 0, 180, 180}, {w - 181, h - 183, w, h},
        {0, h - 50, 33, h}, {w - 1, 0, w, 1}, {w / 3, 0, w / 3 + 77, 61}, {0, h / 2, 5, h / 2 + 3},
        {401, 203, 402, 204}, {17, 33, 47, 63}, {0, 100, w, 140}, {100, 0, 150, h}, {0, 0, w, h},
        {w - 16, h - 16, w, h}, {15, 15, 17, 17}, {w - 270, 301, w - 1, 571},
    };
    int n = (int)(sizeof all / sizeof all[0]);
    memcpy(b, all, sizeof all);
    return n;
}

TEST(splice_equals_full_encode_for_edge_boxes_720p) {
    ls_box b[32];
    int n = edge_boxes(1280, 720, b);
    CHECK(check_boxes(1280, 720, 4, b, n) == 0, "1280x720, restart 4");
    CHECK(check_boxes(1280, 720, 8, b, n) == 0, "1280x720, restart 8");
}

TEST(splice_equals_full_encode_for_edge_boxes_1080p) {
    ls_box b[32];
    int n = edge_boxes(1920, 1080, b); /* 1080 = 67.5 MCU rows: bottom boxes end mid-MCU */
    CHECK(check_boxes(1920, 1080, 4, b, n) == 0, "1920x1080, restart 4");
}

TEST(splice_handles_segments_that_wrap_rows) {
    /* 1080 px wide = 68 MCUs per row: restart 8 does not divide it (segments wrap rows, so the
     * region spans full rows, every 2 rows); restart 3 and 7 on 1280 (80 MCUs) likewise, and an
     * interval longer than a row. */
    ls_box b[32];
    int n = edge_boxes(1080, 608, b);
    CHECK(check_boxes(1080, 608, 8, b, n) == 0, "1080x608, restart 8");
    n = edge_boxes(1280, 720, b);
    CHECK(check_boxes(1280, 720, 3, b, n) == 0, "1280x720, restart 3");
    CHECK(check_boxes(1280, 720, 7, b, n) == 0, "1280x720, restart 7");
    CHECK(check_boxes(1280, 720, 1, b, n) == 0, "1280x720, restart 1");
    n = edge_boxes(640, 608, b); /* 40 MCUs per row, restart 100: segments span 2.5 rows */
    CHECK(check_boxes(640, 608, 100, b, n) == 0, "640x608, restart 100");
}

TEST(splice_equals_full_encode_for_random_boxes) {
    const int cfg[][4] = {{1280, 720, 4, 75}, {1280, 720, 8, 90}, {1920, 1080, 4, 75}, {1000, 562, 6, 50}};
    const int count[] = {80, 40, 25, 40};
    for (int c = 0; c < 4; c++) {
        fixture f;
        CHECK(fixture_init(&f, cfg[c][0], cfg[c][1], cfg[c][3], cfg[c][2], (uint32_t)c + 100) == 0, "fixture");
        uint32_t s = 1234u + (uint32_t)c;
        int bad = 0;
        for (int i = 0; i < count[c] && !bad; i++) {
            int bw = 1 + (int)(ju_rand(&s) % (unsigned)(f.w / 3)), bh = 1 + (int)(ju_rand(&s) % (unsigned)(f.h / 2));
            int x = (int)(ju_rand(&s) % (unsigned)(f.w - bw + 1)), y = (int)(ju_rand(&s) % (unsigned)(f.h - bh + 1));
            ls_box b = {x, y, x + bw, y + bh};
            composite(&f, b, (int)(ju_rand(&s) & 1), s);
            bad = check_frame(&f, b, "random");
        }
        fixture_free(&f);
        CHECK(!bad, "%dx%d restart %d q%d", cfg[c][0], cfg[c][1], cfg[c][2], cfg[c][3]);
    }
}

/* Decodes with FFmpeg's MJPEG decoder (errors fatal) and copies the w x h luma plane to dst;
 * 0 on success. */
static int ffmpeg_decode_luma(const uint8_t *jpeg, size_t len, int w, int h, uint8_t *dst) {
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *ctx = codec ? avcodec_alloc_context3(codec) : NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    int rc = -1;
    if (ctx && pkt && frame) {
        ctx->err_recognition = AV_EF_EXPLODE;
        if (avcodec_open2(ctx, codec, NULL) == 0 && av_new_packet(pkt, (int)len) == 0) {
            memcpy(pkt->data, jpeg, len);
            if (avcodec_send_packet(ctx, pkt) == 0 && avcodec_receive_frame(ctx, frame) == 0 &&
                frame->width == w && frame->height == h) {
                for (int y = 0; y < h; y++) memcpy(dst + (size_t)y * w, frame->data[0] + (size_t)y * frame->linesize[0], (size_t)w);
                rc = 0;
            }
        }
    }
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return rc;
}

TEST(ffmpeg_decodes_splice_like_the_reference) {
    fixture f;
    CHECK(fixture_init(&f, 1920, 1080, 75, 4, 8) == 0, "fixture");
    ls_box b = {1700, 900, 1920, 1080}; /* bottom-right corner, partial MCU row */
    composite(&f, b, 1, 3);
    size_t len;
    ls_err e;
    unsigned long ref_len;
    int rc = jsplice_encode(f.enc, f.bg, f.frame, f.stride, b, f.out, f.out_cap, &len, &e);
    uint8_t *ref = ju_reference_encode(f.frame, f.w, f.h, f.stride, 75, 4, &ref_len);
    int da = rc ? -1 : ffmpeg_decode_luma(f.out, len, f.w, f.h, f.pix_a);
    int db = ffmpeg_decode_luma(ref, ref_len, f.w, f.h, f.pix_b);
    int same = da == 0 && db == 0 && memcmp(f.pix_a, f.pix_b, (size_t)f.w * f.h) == 0;
    free(ref);
    fixture_free(&f);
    CHECK(rc == 0 && da == 0, "FFmpeg must decode the spliced JPEG with AV_EF_EXPLODE");
    CHECK(same, "FFmpeg's luma of splice and reference must be identical (tolerance 0)");
}

TEST(region_is_segment_aligned_and_covers_box) {
    fixture f;
    CHECK(fixture_init(&f, 1920, 1080, 75, 4, 3) == 0, "fixture");
    ls_box r, b = {130, 70, 400, 340};
    ls_err e;
    int rc = jsplice_region(f.bg, b, &r, &e);
    ls_box edge = {1900, 1070, 1920, 1080}, r2;
    int rc2 = jsplice_region(f.bg, edge, &r2, &e);
    fixture_free(&f);
    CHECK(rc == 0 && rc2 == 0, "region");
    /* 4 MCUs = 64 px segments horizontally, 16 px rows vertically */
    CHECK(r.x1 == 128 && r.x2 == 448 && r.y1 == 64 && r.y2 == 352, "got (%d,%d)-(%d,%d)", r.x1, r.y1, r.x2, r.y2);
    CHECK(r2.x1 == 1856 && r2.x2 == 1920 && r2.y1 == 1056 && r2.y2 == 1080, "edge region ends at the image edge");
}

TEST(corrupted_rst_number_is_detected) {
    /* Shows the checks above can fail: swap one RST number in a valid splice. */
    fixture f;
    CHECK(fixture_init(&f, 640, 480, 75, 4, 5) == 0, "fixture");
    ls_box b = {100, 100, 300, 300};
    composite(&f, b, 0, 1);
    size_t len;
    ls_err e;
    int rc = jsplice_encode(f.enc, f.bg, f.frame, f.stride, b, f.out, f.out_cap, &len, &e);
    long before = rc ? -2 : marker_walk(f.out, len, 4);
    size_t p = len / 2;
    while (p + 1 < len && !(f.out[p] == 0xFF && f.out[p + 1] >= 0xD0 && f.out[p + 1] <= 0xD7)) p++;
    f.out[p + 1] = (uint8_t)(0xD0 + ((f.out[p + 1] - 0xD0 + 1) & 7));
    long after = marker_walk(f.out, len, 4);
    int strict = tjDecompress2(f.tj, f.out, len, f.pix_a, f.w, 0, f.h, TJPF_BGR, TJFLAG_STOPONWARNING);
    fixture_free(&f);
    CHECK(before > 0, "valid splice walks");
    CHECK(after == -1, "marker walk must reject a wrong RST number");
    CHECK(strict != 0, "strict TurboJPEG decode must reject a wrong RST number");
}

TEST(output_buffer_too_small_is_a_clean_error) {
    fixture f;
    CHECK(fixture_init(&f, 1280, 720, 75, 4, 6) == 0, "fixture");
    ls_box b = {500, 200, 680, 380};
    composite(&f, b, 0, 2);
    size_t len = 0, len2 = 0, small_len = 12345;
    ls_err e = {0}, e2 = {0}, e3 = {0};
    int ok = jsplice_encode(f.enc, f.bg, f.frame, f.stride, b, f.out, f.out_cap, &len, &e);
    int rc_splice = jsplice_encode(f.enc, f.bg, f.frame, f.stride, b, f.out, len - 1, &small_len, &e2);
    int rc_full = jsplice_encode_full(f.enc, f.frame, f.w, f.h, f.stride, 75, 4, f.out, 1000, &small_len, &e3);
    int again = jsplice_encode(f.enc, f.bg, f.frame, f.stride, b, f.out, f.out_cap, &len2, &e);
    int bad = check_frame(&f, b, "after errors");
    fixture_free(&f);
    CHECK(ok == 0, "first encode");
    CHECK(rc_splice == -1 && e2.code == LS_ENOMEM, "splice into len-1 bytes: %s", e2.msg);
    CHECK(rc_full == -1 && e3.code == LS_ENOMEM, "full encode into 1000 bytes: %s", e3.msg);
    CHECK(small_len == 12345, "out_len untouched on error");
    CHECK(again == 0 && len2 == len && bad == 0, "the encoder works normally after a failure");
}

TEST(invalid_input_is_rejected_and_fallback_is_signalled) {
    fixture f;
    CHECK(fixture_init(&f, 320, 240, 75, 4, 7) == 0, "fixture");
    ls_box in = {10, 10, 50, 50}, out_box = {300, 200, 330, 240}, empty = {10, 10, 10, 20}, neg = {-1, 0, 5, 5};
    ls_err e = {0};
    size_t len;
    int can = jsplice_can_splice(f.bg, 320, 240, 75, in);
    int q = jsplice_can_splice(f.bg, 320, 240, 80, in), sz = jsplice_can_splice(f.bg, 320, 256, 75, in);
    int ob = jsplice_can_splice(f.bg, 320, 240, 75, out_box), em = jsplice_can_splice(f.bg, 320, 240, 75, empty);
    int ng = jsplice_can_splice(f.bg, 320, 240, 75, neg);
    int rc = jsplice_encode(f.enc, f.bg, f.bg_img, f.stride, out_box, f.out, f.out_cap, &len, &e);
    ls_err e2 = {0}, e3 = {0}, e4 = {0};
    jsplice_background *b0 = jsplice_background_create(f.bg_img, 320, 240, f.stride, 0, 4, &e2);
    jsplice_background *b1 = jsplice_background_create(f.bg_img, 320, 240, f.stride, 75, 0, &e3);
    jsplice_encoder *small = jsplice_encoder_create(160, 120, &e4);
    int big = small ? jsplice_encode(small, f.bg, f.bg_img, f.stride, in, f.out, f.out_cap, &len, &e4) : 0;
    jsplice_encoder_free(small);
    fixture_free(&f);
    CHECK(can == 1, "same size, quality, box inside: splice");
    CHECK(!q && !sz && !ob && !em && !ng, "quality/size mismatch or a bad box: fall back");
    CHECK(rc == -1 && e.code == LS_EINVAL, "box outside the frame: %s", e.msg);
    CHECK(!b0 && e2.code == LS_EINVAL && !b1 && e3.code == LS_EINVAL, "quality 0 / restart 0 rejected");
    CHECK(big == -1 && e4.code == LS_EINVAL, "frame larger than the encoder: %s", e4.msg);
}

int main(void) {
    RUN(background_is_the_reference_full_encode);
    RUN(encode_full_matches_reference_at_odd_sizes);
    RUN(splice_equals_full_encode_for_edge_boxes_720p);
    RUN(splice_equals_full_encode_for_edge_boxes_1080p);
    RUN(splice_handles_segments_that_wrap_rows);
    RUN(splice_equals_full_encode_for_random_boxes);
    RUN(ffmpeg_decodes_splice_like_the_reference);
    RUN(region_is_segment_aligned_and_covers_box);
    RUN(corrupted_rst_number_is_detected);
    RUN(output_buffer_too_small_is_a_clean_error);
    RUN(invalid_input_is_rejected_and_fallback_is_signalled);
    return check_summary();
}
