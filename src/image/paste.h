/* paste.h - the UNet's output back into the frame, as the reference pipeline does it.
 *
 * pred is 3 x 320 x 320 float32 BGR (CHW) in [0, 1] (or, for the _u8 variants, those bytes). It becomes uint8 as
 * np.array(pred * 255, dtype=np.uint8) does for in-range values: a float32 multiply by 255, then
 * truncation toward zero. For safety (numpy leaves these undefined) NaN and negative products
 * become 0 and products of 255 or more become 255. Those pixels overwrite crop[4:324, 4:324] of
 * the 328 x 328 crop that prep_frame made (its 4-pixel border stays), the crop is resized back to
 * the box size with cv2-exact INTER_CUBIC, and the result overwrites frame[y1:y2, x1:x2].
 *
 * Memory: all buffers are the caller's; nothing allocates. paste_pred_to_crop modifies the crop
 * in place; paste_frame only reads it. The
 * resize scratch must take a box-sized destination: PREP_SCRATCH_SIDE square (prepare.h) does.
 * Errors: -1 with LS_EINVAL for a bad box (see prep_check_box) or a scratch too small. */
#ifndef LS_IMAGE_PASTE_H
#define LS_IMAGE_PASTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/box.h"
#include "common/err.h"
#include "image/resize.h"

/* crop[4:324, 4:324] = uint8(pred * 255) as described above. crop rows are 328 * 3 bytes. */
void paste_pred_to_crop(const float *pred, uint8_t *crop);

/* Resize (crop with its inside replaced as paste_pred_to_crop would) to the box and write it into
 * the frame. The crop is only read: its border (the inside comes from pred directly). */
int paste_frame(const float *pred, const uint8_t *crop, ls_box box, uint8_t *frame, int fw, int fh,
                size_t frame_stride, resize_scratch *s, ls_err *err);

/* The same for a prediction already in bytes: pred_hwc is 320 x 320 x 3 uint8 BGR (HWC, rows
 * 960 bytes), e.g. the uint8-wrapped UNet's output_u8 (infer/onnx_wrap.h). For the bytes that
 * paste_pred_to_crop makes of a float pred, both give the same crop and frame bit for bit. */
void paste_u8_to_crop(const uint8_t *pred_hwc, uint8_t *crop);
int paste_frame_u8(const uint8_t *pred_hwc, const uint8_t *crop, ls_box box, uint8_t *frame, int fw, int fh,
                   size_t frame_stride, resize_scratch *s, ls_err *err);

#endif
