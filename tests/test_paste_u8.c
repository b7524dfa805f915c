/* test_paste_u8.c - the uint8 paste-back (paste_u8_to_crop, paste_frame_u8) gives exactly what the
 * float one gives for the float prediction whose to_u8 bytes it is handed. */
#include "check.h"

#include "image/paste.h"
#include "image/prepare.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define PLANE ((size_t)PREP_SIZE * PREP_SIZE)
#define FW 640
#define FH 480

static float pred[3 * PLANE];
static uint8_t pred_hwc[PLANE * 3], crop[PREP_CROP_BYTES];
static uint8_t frame_f[FW * FH * 3], frame_u[FW * FH * 3];

static uint32_t rng = 777;
static uint32_t next(void) { return rng = rng * 1664525u + 1013904223u; }

/* A prediction with every kind of value to_u8 handles: [0,1] mostly, plus NaN, +-inf, negatives,
 * values above 1; a random crop; and pred_hwc = the bytes paste_pred_to_crop makes of pred. */
static void make_inputs(void) {
    static const float odd[6] = {NAN, INFINITY, -INFINITY, -0.5f, 1.5f, 1e30f};
    for (size_t i = 0; i < 3 * PLANE; i++) {
        uint32_t r = next();
        pred[i] = (r >> 24) < 16 ? odd[(r >> 8) % 6] : (float)(r >> 8) / 16777216.0f;
    }
    for (size_t i = 0; i < sizeof crop; i++) crop[i] = (uint8_t)(next() >> 24);
    uint8_t tmp[PREP_CROP_BYTES];
    memcpy(tmp, crop, sizeof tmp);
    paste_pred_to_crop(pred, tmp);
    for (int y = 0; y < PREP_SIZE; y++)
        memcpy(pred_hwc + (size_t)y * PREP_SIZE * 3, tmp + ((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3,
               (size_t)PREP_SIZE * 3);
}

TEST(paste_u8_to_crop_equals_paste_pred_to_crop) {
    uint8_t a[PREP_CROP_BYTES], b[PREP_CROP_BYTES];
    memcpy(a, crop, sizeof a);
    memcpy(b, crop, sizeof b);
    paste_pred_to_crop(pred, a);
    paste_u8_to_crop(pred_hwc, b);
    for (size_t i = 0; i < sizeof a; i++) CHECK(a[i] == b[i], "crop byte %zu: %d vs %d", i, a[i], b[i]);
    /* and the border is the crop's own: only [4:324, 4:324] was written */
    for (int y = 0; y < PREP_CROP; y++)
        for (int x = 0; x < PREP_CROP; x++) {
            int inside = y >= PREP_BORDER && y < PREP_BORDER + PREP_SIZE && x >= PREP_BORDER && x < PREP_BORDER + PREP_SIZE;
            size_t i = ((size_t)y * PREP_CROP + x) * 3;
            CHECK(inside || memcmp(b + i, crop + i, 3) == 0, "border pixel (%d, %d) changed", x, y);
        }
}

/* Tolerance: none; same row values feed the same resize code. Boxes: smaller than the crop,
 * exactly 328, larger, non-square, touching each frame edge, and 1 x 1. */
TEST(paste_frame_u8_equals_paste_frame_on_several_boxes) {
    static const ls_box boxes[] = {{100, 80, 243, 223}, {0, 0, 328, 328}, {150, 20, 630, 470},
                                   {3, 300, 90, 480},   {560, 0, 640, 37}, {321, 222, 322, 223}};
    resize_scratch s;
    ls_err e = {0};
    CHECK(resize_scratch_init(&s, PREP_SCRATCH_SIDE, PREP_SCRATCH_SIDE, &e) == 0, "scratch: %s", e.msg);
    int ok = 1;
    for (size_t k = 0; k < sizeof boxes / sizeof *boxes && ok; k++) {
        for (size_t i = 0; i < sizeof frame_f; i++) frame_f[i] = frame_u[i] = (uint8_t)(next() >> 24);
        int rf = paste_frame(pred, crop, boxes[k], frame_f, FW, FH, FW * 3, &s, &e);
        int ru = paste_frame_u8(pred_hwc, crop, boxes[k], frame_u, FW, FH, FW * 3, &s, &e);
        ok = rf == 0 && ru == 0 && memcmp(frame_f, frame_u, sizeof frame_f) == 0;
        if (!ok)
            fprintf(stderr, "  box %zu [%d,%d,%d,%d]: rc %d/%d %s\n", k, boxes[k].x1, boxes[k].y1, boxes[k].x2,
                    boxes[k].y2, rf, ru, e.msg);
    }
    resize_scratch_free(&s);
    CHECK(ok, "every box gives the same frame bytes (above)");
}

TEST(paste_frame_u8_refuses_bad_arguments_like_paste_frame) {
    resize_scratch s;
    ls_err e = {0};
    CHECK(resize_scratch_init(&s, 64, 64, &e) == 0, "scratch");
    int null_buf = paste_frame_u8(NULL, crop, (ls_box){0, 0, 10, 10}, frame_u, FW, FH, FW * 3, &s, &e);
    int null_code = e.code;
    int outside = paste_frame_u8(pred_hwc, crop, (ls_box){600, 0, 700, 10}, frame_u, FW, FH, FW * 3, &s, &e);
    int outside_code = e.code;
    int stride = paste_frame_u8(pred_hwc, crop, (ls_box){0, 0, 10, 10}, frame_u, FW, FH, FW, &s, &e);
    int stride_code = e.code;
    int small = paste_frame_u8(pred_hwc, crop, (ls_box){0, 0, 100, 100}, frame_u, FW, FH, FW * 3, &s, &e);
    int small_code = e.code;
    resize_scratch_free(&s);
    CHECK(null_buf == -1 && null_code == LS_EINVAL, "NULL prediction");
    CHECK(outside == -1 && outside_code == LS_EINVAL, "box outside the frame");
    CHECK(stride == -1 && stride_code == LS_EINVAL, "stride below 3 * width");
    CHECK(small == -1 && small_code == LS_EINVAL, "scratch smaller than the box");
}

int main(void) {
    make_inputs();
    RUN(paste_u8_to_crop_equals_paste_pred_to_crop);
    RUN(paste_frame_u8_equals_paste_frame_on_several_boxes);
    RUN(paste_frame_u8_refuses_bad_arguments_like_paste_frame);
    return check_summary();
}
