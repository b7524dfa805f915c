/* prepare.c - face crop -> 328 crop + 6x320x320 float network input (see prepare.h). */
#include "image/prepare.h"

#include <string.h>

int prep_check_box(ls_box b, int fw, int fh, ls_err *err) {
    if (fw < 1 || fh < 1 || fw > RESIZE_MAX_SIDE || fh > RESIZE_MAX_SIDE)
        return ls_fail(err, LS_EINVAL, "frame %dx%d is outside 1..%d", fw, fh, RESIZE_MAX_SIDE);
    if (!box_inside(b, fw, fh))
        return ls_fail(err, LS_EINVAL,
                       "face box [%d,%d,%d,%d] is empty or not inside the %dx%d frame "
                       "(need 0 <= x1 < x2 <= %d, 0 <= y1 < y2 <= %d)",
                       b.x1, b.y1, b.x2, b.y2, fw, fh, fw, fh);
    if (box_width(b) > PREP_MAX_BOX_SIDE || box_height(b) > PREP_MAX_BOX_SIDE)
        return ls_fail(err, LS_EINVAL, "face box [%d,%d,%d,%d] is %dx%d, larger than %d per side",
                       b.x1, b.y1, b.x2, b.y2, box_width(b), box_height(b), PREP_MAX_BOX_SIDE);
    return 0;
}

/* v / 255 for every byte, as numpy's float32 division rounds it (a true division; multiplying by
 * 1/255 would differ in the last bit). The compiler folds these divisions with the same IEEE
 * rounding; a table lookup is ~3x faster than dividing 300k values per frame. */
#define DIV1(i) (float)(i) / 255.0f
#define DIV4(i) DIV1(i), DIV1((i) + 1), DIV1((i) + 2), DIV1((i) + 3)
#define DIV16(i) DIV4(i), DIV4((i) + 4), DIV4((i) + 8), DIV4((i) + 12)
#define DIV64(i) DIV16(i), DIV16((i) + 16), DIV16((i) + 32), DIV16((i) + 48)
static const float byte_over_255[256] = {DIV64(0), DIV64(64), DIV64(128), DIV64(192)};

/* One 320-pixel BGR row -> three float rows (B, G, R planes). */
static void row_to_planes(const uint8_t *restrict px, float *restrict b, float *restrict g,
                          float *restrict r) {
    for (int x = 0; x < PREP_SIZE; x++) {
        b[x] = byte_over_255[px[3 * x + 0]];
        g[x] = byte_over_255[px[3 * x + 1]];
        r[x] = byte_over_255[px[3 * x + 2]];
    }
}

void prep_input_from_crop(const uint8_t *crop, float *input) {
    const size_t plane = (size_t)PREP_SIZE * PREP_SIZE;
    for (int y = 0; y < PREP_SIZE; y++) {
        const uint8_t *row = crop + ((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3;
        float *real[3], *masked[3];
        for (int c = 0; c < 3; c++) {
            real[c] = input + c * plane + (size_t)y * PREP_SIZE;
            masked[c] = input + (3 + c) * plane + (size_t)y * PREP_SIZE;
        }
        row_to_planes(row, real[0], real[1], real[2]);
        for (int c = 0; c < 3; c++) {
            if (y < PREP_MASK_Y0 || y > PREP_MASK_Y1) {
                memcpy(masked[c], real[c], PREP_SIZE * sizeof(float));
                continue;
            }
            /* cv2.rectangle(..., (0,0,0), -1): only the left and right margins survive. */
            memcpy(masked[c], real[c], PREP_MASK_X0 * sizeof(float));
            memset(masked[c] + PREP_MASK_X0, 0, (PREP_MASK_X1 - PREP_MASK_X0 + 1) * sizeof(float));
            memcpy(masked[c] + PREP_MASK_X1 + 1, real[c] + PREP_MASK_X1 + 1,
                   (PREP_SIZE - 1 - PREP_MASK_X1) * sizeof(float));
        }
    }
}

int prep_crop(const uint8_t *frame, int fw, int fh, size_t frame_stride, ls_box box, uint8_t *crop,
              resize_scratch *s, ls_err *err) {
    if (!frame || !crop) return ls_fail(err, LS_EINVAL, "prep: NULL buffer");
    if (prep_check_box(box, fw, fh, err)) return ls_wrap(err, "prep");
    if (frame_stride < (size_t)fw * 3) return ls_fail(err, LS_EINVAL, "prep: stride below 3 * width");
    const uint8_t *src = frame + (size_t)box.y1 * frame_stride + (size_t)box.x1 * 3;
    if (resize_bgr(src, box_width(box), box_height(box), frame_stride, crop, PREP_CROP, PREP_CROP,
                   (size_t)PREP_CROP * 3, s, err))
        return ls_wrap(err, "prep: crop to %d", PREP_CROP);
    return 0;
}

int prep_frame(const uint8_t *frame, int fw, int fh, size_t frame_stride, ls_box box,
               uint8_t *crop, float *input, resize_scratch *s, ls_err *err) {
    if (!input) return ls_fail(err, LS_EINVAL, "prep: NULL buffer");
    if (prep_crop(frame, fw, fh, frame_stride, box, crop, s, err) != 0) return -1;
    prep_input_from_crop(crop, input);
    return 0;
}

void prep_crop_from_input(const float *input, uint8_t *crop) {
    const size_t plane = (size_t)PREP_SIZE * PREP_SIZE;
    for (int y = 0; y < PREP_SIZE; y++) {
        uint8_t *row = crop + ((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3;
        for (int x = 0; x < PREP_SIZE; x++)
            for (int c = 0; c < 3; c++) {
                float v = input[(size_t)c * plane + (size_t)y * PREP_SIZE + (size_t)x] * 255.0f + 0.5f;
                row[3 * x + c] = (uint8_t)(v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f); /* NaN -> 0 */
            }
    }
}
