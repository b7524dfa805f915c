/* paste.c - network output -> crop -> resized back into the frame (see paste.h). */
#include "image/paste.h"

#include "image/prepare.h"

/* float -> uint8 as numpy's cast truncates, with NaN/negative -> 0 and >= 255 -> 255.
 * `v > 0 ? v : 0` is false for NaN, so NaN lands on 0. */
static inline uint8_t to_u8(float p) {
    float v = p * 255.0f;
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    return (uint8_t)(int)v;
}

void paste_pred_to_crop(const float *pred, uint8_t *crop) {
    const size_t plane = (size_t)PREP_SIZE * PREP_SIZE;
    uint8_t u8[3][PREP_SIZE];
    for (int y = 0; y < PREP_SIZE; y++) {
        /* Plane by plane (contiguous, so the conversion vectorises), then interleave to BGR. */
        for (int c = 0; c < 3; c++) {
            const float *restrict in = pred + c * plane + (size_t)y * PREP_SIZE;
            uint8_t *restrict o = u8[c];
            for (int x = 0; x < PREP_SIZE; x++) o[x] = to_u8(in[x]);
        }
        uint8_t *restrict out = crop + ((size_t)(y + PREP_BORDER) * PREP_CROP + PREP_BORDER) * 3;
        for (int x = 0; x < PREP_SIZE; x++) {
            out[3 * x + 0] = u8[0][x];
            out[3 * x + 1] = u8[1][x];
            out[3 * x + 2] = u8[2][x];
        }
    }
}

int paste_frame(const float *pred, uint8_t *crop, ls_box box, uint8_t *frame, int fw, int fh,
                size_t frame_stride, resize_scratch *s, ls_err *err) {
    if (!pred || !crop || !frame) return ls_fail(err, LS_EINVAL, "paste: NULL buffer");
    if (prep_check_box(box, fw, fh, err)) return ls_wrap(err, "paste");
    if (frame_stride < (size_t)fw * 3) return ls_fail(err, LS_EINVAL, "paste: stride below 3 * width");
    paste_pred_to_crop(pred, crop);
    uint8_t *dst = frame + (size_t)box.y1 * frame_stride + (size_t)box.x1 * 3;
    if (resize_bgr(crop, PREP_CROP, PREP_CROP, (size_t)PREP_CROP * 3, dst, box_width(box),
                   box_height(box), frame_stride, s, err))
        return ls_wrap(err, "paste: crop to box");
    return 0;
}
