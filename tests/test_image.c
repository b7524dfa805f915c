/* test_image.c - src/image behaviours that need no OpenCV: box validation, scratch limits, the
 * pred -> uint8 clamping, JPEG encoding (checked by decoding with TurboJPEG, strict), and image
 * file decoding of good, truncated, corrupt and oversized files. Pixel equality with cv2 is
 * checked by test_image_vs_opencv.py. */
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>

#include "image/imgfile.h"
#include "image/jpeg.h"
#include "image/paste.h"
#include "image/prepare.h"
#include "image/resize.h"

/* A frame with smooth shading, edges and a little texture, like video. */
static void photo_like(uint8_t *px, int w, int h, size_t stride) {
    uint32_t seed = 12345;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                seed = seed * 1664525u + 1013904223u;
                double v = 128 + 90 * sin(x / (23.0 + 7 * c)) * cos(y / (17.0 + 5 * c));
                if (((x / 37 + y / 29) % 5) == 0) v = 240;
                v += (double)(seed >> 29) - 3.5; /* +-3.5 noise */
                px[(size_t)y * stride + 3 * x + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

/* A scratch file path in the build tree (ctest runs in the source tree, which stays clean). */
static const char *scratch_path(const char *name) {
    static char p[1024];
    const char *dir = getenv("LS_BUILD_DIR");
    snprintf(p, sizeof p, "%s/%s", dir ? dir : "/tmp", name);
    return p;
}

static double psnr(const uint8_t *a, size_t sa, const uint8_t *b, size_t sb, int w, int h) {
    double se = 0;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < 3 * w; i++) {
            double d = (double)a[(size_t)y * sa + i] - b[(size_t)y * sb + i];
            se += d * d;
        }
    return 10 * log10(255.0 * 255.0 / (se / (3.0 * w * h)));
}

TEST(box_inside_the_frame_is_accepted_including_edges_and_1x1) {
    ls_err e;
    CHECK(prep_check_box((ls_box){0, 0, 1280, 720}, 1280, 720, &e) == 0, "whole frame: %s", e.msg);
    CHECK(prep_check_box((ls_box){5, 6, 6, 7}, 1280, 720, &e) == 0, "1x1: %s", e.msg);
    CHECK(prep_check_box((ls_box){1279, 719, 1280, 720}, 1280, 720, &e) == 0, "corner: %s", e.msg);
}

TEST(box_outside_empty_or_inverted_is_rejected_with_a_message) {
    const ls_box bad[] = {{-1, 0, 100, 100}, {0, -5, 100, 100}, {1200, 0, 1281, 100},
                          {0, 600, 100, 721}, {50, 50, 50, 100}, {50, 50, 100, 50},
                          {100, 100, 50, 150}, {2000, 0, 2100, 100}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ls_err e = {0};
        CHECK(prep_check_box(bad[i], 1280, 720, &e) == -1, "box %zu accepted", i);
        CHECK(e.code == LS_EINVAL, "box %zu: code %d", i, e.code);
        char want[64];
        snprintf(want, sizeof want, "[%d,%d,%d,%d]", bad[i].x1, bad[i].y1, bad[i].x2, bad[i].y2);
        CHECK(strstr(e.msg, want) && strstr(e.msg, "1280x720"), "message names box and frame: %s", e.msg);
    }
}

TEST(box_larger_than_the_maximum_is_rejected) {
    ls_err e = {0};
    ls_box b = {0, 0, PREP_MAX_BOX_SIDE + 1, 100};
    CHECK(prep_check_box(b, 8000, 8000, &e) == -1 && e.code == LS_EINVAL, "accepted");
    CHECK(strstr(e.msg, "larger than") != NULL, "message: %s", e.msg);
}

TEST(prep_and_paste_refuse_a_bad_box_without_touching_buffers) {
    static uint8_t frame[64 * 48 * 3], crop[PREP_CROP_BYTES];
    static float input[PREP_INPUT_FLOATS], pred[3 * PREP_SIZE * PREP_SIZE];
    resize_scratch s;
    ls_err e = {0};
    CHECK(resize_scratch_init(&s, 512, 512, &e) == 0, "scratch: %s", e.msg);
    memset(crop, 7, sizeof crop);
    memset(frame, 9, sizeof frame);
    ls_box b = {10, 10, 65, 20}; /* x2 past the 64-wide frame */
    int rp = prep_frame(frame, 64, 48, 64 * 3, b, crop, input, &s, &e);
    CHECK(rp == -1 && e.code == LS_EINVAL && strstr(e.msg, "prep"), "prep: %d %s", rp, e.msg);
    int rq = paste_frame(pred, crop, b, frame, 64, 48, 64 * 3, &s, &e);
    CHECK(rq == -1 && e.code == LS_EINVAL && strstr(e.msg, "paste"), "paste: %d %s", rq, e.msg);
    CHECK(crop[0] == 7 && crop[PREP_CROP_BYTES / 2] == 7 && frame[100] == 9, "buffers untouched");
    resize_scratch_free(&s);
}

TEST(resize_refuses_images_larger_than_its_scratch) {
    resize_scratch s;
    ls_err e = {0};
    static uint8_t src[200 * 10 * 3], dst[200 * 200 * 3];
    CHECK(resize_scratch_init(&s, 100, 100, &e) == 0, "init: %s", e.msg);
    CHECK(resize_bgr(src, 10, 10, 30, dst, 101, 50, 303, &s, &e) == -1 && e.code == LS_EINVAL,
          "destination wider than scratch accepted");
    CHECK(resize_bgr(src, 10, 10, 30, dst, 50, 101, 150, &s, &e) == -1 && e.code == LS_EINVAL,
          "destination taller than scratch accepted");
    CHECK(resize_bgr(src, 101, 10, 303, dst, 50, 50, 150, &s, &e) == -1 && e.code == LS_EINVAL,
          "source wider than scratch accepted");
    CHECK(resize_bgr(src, 10, 10, 29, dst, 50, 50, 150, &s, &e) == -1, "short stride accepted");
    CHECK(resize_bgr(src, 10, 10, 30, dst, 100, 100, 300, &s, &e) == 0, "max size: %s", e.msg);
    resize_scratch_free(&s);
    CHECK(resize_scratch_init(&s, 0, 10, &e) == -1 && e.code == LS_EINVAL, "0 width scratch");
}

TEST(pred_to_uint8_truncates_and_clamps_nan_negative_and_overflow) {
    static float pred[3 * PREP_SIZE * PREP_SIZE];
    static uint8_t crop[PREP_CROP_BYTES];
    memset(crop, 77, sizeof crop);
    const float in[] = {0.5f, 1.0f, 0.0f, -0.25f, NAN, 2.0f, INFINITY, -INFINITY, 0.999f};
    const uint8_t want[] = {127, 255, 0, 0, 0, 255, 255, 0, 254}; /* 127.5 -> 127, 254.745 -> 254 */
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) pred[PREP_SIZE * PREP_SIZE + i] = in[i];
    paste_pred_to_crop(pred, crop);
    const uint8_t *row = crop + ((size_t)PREP_BORDER * PREP_CROP + PREP_BORDER) * 3;
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        CHECK(row[3 * i + 1] == want[i], "G of pixel %zu: %f -> %d, want %d", i, in[i], row[3 * i + 1], want[i]);
    CHECK(crop[0] == 77 && crop[(PREP_CROP * PREP_CROP - 1) * 3] == 77, "4-pixel border kept");
    CHECK(crop[((size_t)PREP_BORDER * PREP_CROP + PREP_BORDER - 1) * 3] == 77, "left border kept");
}

/* paste_frame reads the network's planes directly instead of building the crop first: it must give
 * what resizing the crop made by paste_pred_to_crop gives, byte for byte (exact: tolerance 0),
 * with out-of-range values, for boxes smaller, equal to and larger than the crop. */
TEST(paste_frame_equals_resizing_the_pasted_crop) {
    enum { W = 800, H = 600 };
    static float pred[3 * PREP_SIZE * PREP_SIZE];
    static uint8_t crop[PREP_CROP_BYTES], pasted[PREP_CROP_BYTES], got[W * H * 3], want[W * H * 3];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof pred / sizeof *pred; i++) {
        seed = seed * 1664525u + 1013904223u;
        pred[i] = (float)(seed >> 8) / (float)(1u << 24) * 1.2f - 0.1f; /* -0.1 .. 1.1 */
    }
    pred[3] = NAN, pred[PREP_SIZE * PREP_SIZE + 11] = INFINITY, pred[2 * PREP_SIZE * PREP_SIZE + 7] = -INFINITY;
    for (size_t i = 0; i < sizeof crop; i++) crop[i] = (uint8_t)(i * 7 + (i >> 9));
    resize_scratch s;
    ls_err e = {0};
    CHECK(resize_scratch_init(&s, W, W, &e) == 0, "scratch: %s", e.msg);
    const ls_box boxes[] = {{10, 20, 153, 163}, {100, 50, 301, 271}, {0, 0, 328, 328}, {300, 100, 717, 590}, {5, 5, 9, 12}};
    for (size_t k = 0; k < sizeof boxes / sizeof *boxes; k++) {
        ls_box b = boxes[k];
        memset(got, 1, sizeof got), memset(want, 1, sizeof want);
        memcpy(pasted, crop, sizeof crop);
        paste_pred_to_crop(pred, pasted);
        CHECK(resize_bgr(pasted, PREP_CROP, PREP_CROP, PREP_CROP * 3, want + ((size_t)b.y1 * W + b.x1) * 3,
                         box_width(b), box_height(b), W * 3, &s, &e) == 0, "resize: %s", e.msg);
        CHECK(paste_frame(pred, crop, b, got, W, H, W * 3, &s, &e) == 0, "paste: %s", e.msg);
        size_t i = 0;
        while (i < sizeof got && got[i] == want[i]) i++;
        CHECK(i == sizeof got, "box %zu (%dx%d): first difference at byte %zu", k, box_width(b), box_height(b), i);
    }
    resize_scratch_free(&s);
}

TEST(jpeg_encode_decodes_strictly_with_the_right_size_and_quality) {
    enum { W = 1280, H = 720 };
    size_t stride = W * 3 + 40; /* padded rows */
    static uint8_t frame[(W * 3 + 40) * H], back[W * H * 3];
    photo_like(frame, W, H, stride);
    ls_err e = {0};
    jpeg_enc *enc = jpeg_enc_create(1920, 1080, JPEG_DEFAULT_QUALITY, &e);
    CHECK(enc, "create: %s", e.msg);
    const uint8_t *jpg;
    size_t len;
    CHECK(jpeg_encode_bgr(enc, frame, W, H, stride, &jpg, &len, &e) == 0, "encode: %s", e.msg);
    tjhandle tj = tjInitDecompress();
    int w, h, sub, cs;
    CHECK(tjDecompressHeader3(tj, jpg, len, &w, &h, &sub, &cs) == 0, "header: %s", tjGetErrorStr2(tj));
    CHECK(w == W && h == H && sub == TJSAMP_420, "got %dx%d subsampling %d", w, h, sub);
    CHECK(tjDecompress2(tj, jpg, len, back, W, 0, H, TJPF_BGR, TJFLAG_STOPONWARNING) == 0,
          "strict decode: %s", tjGetErrorStr2(tj));
    tjDestroy(tj);
    double p = psnr(frame, stride, back, W * 3, W, H);
    CHECK(p > 30.0, "PSNR %.2f dB at q75, want > 30 dB", p); /* q75 4:2:0 on this content: ~35 dB */
    printf("  jpeg 1280x720 q75: %zu bytes, PSNR %.2f dB\n", len, p);
    CHECK(jpeg_encode_bgr(enc, frame, 1921, 10, 1921 * 3, &jpg, &len, &e) == -1 && e.code == LS_EINVAL,
          "frame wider than the encoder's max accepted");
    CHECK(jpeg_enc_set_quality(enc, 0, &e) == -1 && jpeg_enc_set_quality(enc, 101, &e) == -1, "quality range");
    jpeg_enc_destroy(enc);
}

/* Encodes a small photo-like image; returns its bytes in buf. */
static size_t small_jpeg(uint8_t *buf, size_t cap, uint8_t *px, int w, int h) {
    photo_like(px, w, h, (size_t)w * 3);
    jpeg_enc *enc = jpeg_enc_create(w, h, 90, NULL);
    const uint8_t *jpg;
    size_t len = 0;
    if (enc && jpeg_encode_bgr(enc, px, w, h, (size_t)w * 3, &jpg, &len, NULL) == 0 && len <= cap)
        memcpy(buf, jpg, len);
    else
        len = 0;
    jpeg_enc_destroy(enc);
    return len;
}

TEST(jpeg_decodes_to_bgr_and_truncated_jpeg_is_a_clean_error) {
    static uint8_t jpg[200000], px[160 * 120 * 3];
    size_t len = small_jpeg(jpg, sizeof jpg, px, 160, 120);
    CHECK(len > 0, "encode");
    ls_err e = {0};
    int w = 0, h = 0;
    uint8_t *img = img_decode_bgr(jpg, len, &w, &h, &e);
    CHECK(img && w == 160 && h == 120, "decode: %s", e.msg);
    double p = psnr(px, 160 * 3, img, 160 * 3, 160, 120);
    free(img);
    CHECK(p > 30.0, "PSNR %.2f dB at q90 (BGR order kept), want > 30", p);
    img = img_decode_bgr(jpg, len * 2 / 3, &w, &h, &e);
    CHECK(img == NULL && e.code == LS_EFORMAT, "truncated JPEG decoded (code %d)", e.code);
    CHECK(strstr(e.msg, "JPEG") != NULL, "message: %s", e.msg);
    printf("  truncated JPEG: %s\n", e.msg);
}

TEST(jpeg_with_huge_dimensions_is_refused_before_decoding) {
    static uint8_t jpg[200000], px[64 * 64 * 3];
    size_t len = small_jpeg(jpg, sizeof jpg, px, 64, 64);
    CHECK(len > 0, "encode");
    size_t i = 2;
    while (i + 9 < len && !(jpg[i] == 0xFF && jpg[i + 1] == 0xC0)) i++; /* SOF0 */
    CHECK(i + 9 < len, "no SOF0 marker");
    jpg[i + 5] = 0xEA, jpg[i + 6] = 0x60; /* height 60000 */
    jpg[i + 7] = 0xEA, jpg[i + 8] = 0x60; /* width 60000 */
    ls_err e = {0};
    int w, h;
    CHECK(img_decode_bgr(jpg, len, &w, &h, &e) == NULL && e.code == LS_EFORMAT, "accepted");
    CHECK(strstr(e.msg, "60000x60000") != NULL, "message: %s", e.msg);
}

TEST(png_round_trips_exactly_through_files) {
    enum { W = 97, H = 61 };
    static uint8_t px[W * H * 3];
    photo_like(px, W, H, W * 3);
    const char *path = scratch_path("test_image_roundtrip.png");
    ls_err e = {0};
    CHECK(img_write_png(path, px, W, H, W * 3, &e) == 0, "write: %s", e.msg);
    int w, h;
    uint8_t *back = img_load_bgr(path, &w, &h, &e);
    remove(path);
    CHECK(back && w == W && h == H, "load: %s", e.msg);
    int same = memcmp(back, px, sizeof px) == 0;
    free(back);
    CHECK(same, "pixels differ after PNG round trip (lossless, BGR order)");
}

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

TEST(png_truncated_or_oversized_or_garbage_is_a_clean_error) {
    enum { W = 40, H = 30 };
    static uint8_t px[W * H * 3], file[100000];
    photo_like(px, W, H, W * 3);
    const char *path = scratch_path("test_image_bad.png");
    ls_err e = {0};
    CHECK(img_write_png(path, px, W, H, W * 3, &e) == 0, "write: %s", e.msg);
    FILE *f = fopen(path, "rb");
    size_t len = f ? fread(file, 1, sizeof file, f) : 0;
    if (f) fclose(f);
    remove(path);
    CHECK(len > 60, "read back");
    int w, h;
    CHECK(img_decode_bgr(file, len - 20, &w, &h, &e) == NULL && e.code == LS_EFORMAT,
          "truncated PNG decoded (code %d)", e.code);
    printf("  truncated PNG: %s\n", e.msg);
    /* IHDR width 100000 with a valid CRC: refused for its size, not for a checksum. */
    file[16] = 0, file[17] = 0x01, file[18] = 0x86, file[19] = 0xA0;
    uint32_t crc = crc32_png(file + 12, 17);
    file[29] = crc >> 24, file[30] = crc >> 16, file[31] = crc >> 8, file[32] = (uint8_t)crc;
    CHECK(img_decode_bgr(file, len, &w, &h, &e) == NULL && e.code == LS_EFORMAT, "huge PNG accepted");
    printf("  huge PNG: %s\n", e.msg);
    const char junk[] = "GIF89a not an image we read";
    CHECK(img_decode_bgr(junk, sizeof junk, &w, &h, &e) == NULL && e.code == LS_EFORMAT &&
              strstr(e.msg, "not a JPEG or PNG"), "garbage: %s", e.msg);
    CHECK(img_load_bgr("/nonexistent/avatar.png", &w, &h, &e) == NULL && e.code == LS_EIO &&
              strstr(e.msg, "/nonexistent/avatar.png"), "missing file: %s", e.msg);
}

int main(void) {
    RUN(box_inside_the_frame_is_accepted_including_edges_and_1x1);
    RUN(box_outside_empty_or_inverted_is_rejected_with_a_message);
    RUN(box_larger_than_the_maximum_is_rejected);
    RUN(prep_and_paste_refuse_a_bad_box_without_touching_buffers);
    RUN(resize_refuses_images_larger_than_its_scratch);
    RUN(pred_to_uint8_truncates_and_clamps_nan_negative_and_overflow);
    RUN(paste_frame_equals_resizing_the_pasted_crop);
    RUN(jpeg_encode_decodes_strictly_with_the_right_size_and_quality);
    RUN(jpeg_decodes_to_bgr_and_truncated_jpeg_is_a_clean_error);
    RUN(jpeg_with_huge_dimensions_is_refused_before_decoding);
    RUN(png_round_trips_exactly_through_files);
    RUN(png_truncated_or_oversized_or_garbage_is_a_clean_error);
    return check_summary();
}
