/* prepare.h - the UNet's visual input for one frame, as the reference pipeline builds it.
 *
 * From a BGR frame and a face box: crop = cv2.resize(frame[y1:y2, x1:x2], (328, 328), INTER_CUBIC)
 * (kept by the caller for paste-back), real = crop[4:324, 4:324], masked = real with the rectangle
 * x 5..314, y 5..309 (inclusive) set to 0, and input = concat(real, masked) as float32 CHW BGR / 255
 * (6 x 320 x 320, channels B,G,R real then B,G,R masked).
 *
 * Memory: every buffer is the caller's; prep_frame never allocates. The resize scratch must take
 * the box as source and 328 x 328 as destination: one made with
 * resize_scratch_init(&s, PREP_SCRATCH_SIDE, PREP_SCRATCH_SIDE) serves prep and paste for any
 * valid box (about 0.5 MB). Errors: -1 with LS_EINVAL for a box outside the frame, empty, or larger
 * than PREP_MAX_BOX_SIDE, and for bad frame sizes. */
#ifndef LS_IMAGE_PREPARE_H
#define LS_IMAGE_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "common/box.h"
#include "common/err.h"
#include "image/resize.h"

#define PREP_CROP 328          /* side of the resized crop */
#define PREP_BORDER 4          /* crop[4:324, 4:324] is the network's view */
#define PREP_SIZE 320          /* side of the network input */
#define PREP_CHANNELS 6        /* real BGR + masked BGR */
#define PREP_MASK_X0 5         /* masked rectangle, inclusive, in 320x320 coordinates */
#define PREP_MASK_X1 314
#define PREP_MASK_Y0 5
#define PREP_MASK_Y1 309
#define PREP_MAX_BOX_SIDE 4096 /* a face box wider or taller than this is a caller bug */
#define PREP_SCRATCH_SIDE PREP_MAX_BOX_SIDE /* resize scratch size for prep and paste */

#define PREP_CROP_BYTES ((size_t)PREP_CROP * PREP_CROP * 3)                 /* crop, stride 984 */
#define PREP_INPUT_FLOATS ((size_t)PREP_CHANNELS * PREP_SIZE * PREP_SIZE)   /* 614400 */

/* 0 when the box lies inside a fw x fh frame, is at least 1x1 and at most PREP_MAX_BOX_SIDE on
 * each side; otherwise -1 with LS_EINVAL and a message naming the box and the frame. */
int prep_check_box(ls_box box, int fw, int fh, ls_err *err);

/* The 6 x 320 x 320 input from a 328 x 328 crop alone (real + masked, as above): the second half
 * of prep_frame, for callers that keep crops (the crop depends only on the frame and its box). */
void prep_input_from_crop(const uint8_t *crop, float *input);

/* The first half of prep_frame: only the 328 x 328 crop (what a uint8 UNet takes). */
int prep_crop(const uint8_t *frame, int fw, int fh, size_t frame_stride, ls_box box, uint8_t *crop,
              resize_scratch *s, ls_err *err);

/* The real half of a caller's 6 x 320 x 320 float input quantised into crop[4:324, 4:324]:
 * round(v * 255), NaN and negatives to 0, 255 at most (exact for inputs made by prep_frame). */
void prep_crop_from_input(const float *input, uint8_t *crop);

/* frame: fw x fh BGR, rows frame_stride bytes apart. crop: PREP_CROP_BYTES (rows 984 bytes).
 * input: PREP_INPUT_FLOATS floats. */
int prep_frame(const uint8_t *frame, int fw, int fh, size_t frame_stride, ls_box box,
               uint8_t *crop, float *input, resize_scratch *s, ls_err *err);

#endif
