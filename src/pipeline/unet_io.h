/* unet_io.h - one frame's UNet input and output in a worker's batch slot, for the UNet the worker
 * is bound to: a float UNet (input 6 x 320 x 320 floats, output 3 x 320 x 320 floats) or a uint8
 * one (ORT_ROLE_UNET_U8: the 328 x 328 crop in, 320 x 320 x 3 bytes out). The renderer and the
 * live-session scheduler both fill and empty slots through these, so neither knows which it has.
 *
 * Slot b: w->crops[b] always holds the crop (paste-back needs its border); a float UNet also takes
 * w->unet_image[b] and writes w->unet_output[b]; a uint8 UNet reads the crop itself and writes
 * its bytes over the start of w->unet_output (unused as floats then; see pipe_unet_output_u8).
 * Nothing allocates. Errors: LS_EINVAL for a bad box (prep_check_box). */
#ifndef LS_PIPELINE_UNET_IO_H
#define LS_PIPELINE_UNET_IO_H

#include <stdint.h>

#include "avatar/avatar.h"
#include "pipeline/avatar_cache.h"
#include "pipeline/worker.h"

/* 1 when the bound UNet takes and returns uint8 images. */
int pipe_unet_is_u8(const pipe_worker *w);

/* Fills slot b from avatar frame idx (prepared: the avatar's crop cache, or NULL). image_in (may
 * be NULL) is a caller's own 6 x 320 x 320 input that replaces the frame's; a uint8 UNet gets it
 * quantised (prep_crop_from_input). */
int pipe_unet_prepare(pipe_worker *w, int b, const avatar *av, int idx, const pipe_avcache *prepared,
                      const float *image_in, ls_err *err);

/* Pastes slot b's output, resized to `box`, into frame (fw x fh BGR, rows stride bytes). */
int pipe_unet_paste(pipe_worker *w, int b, ls_box box, uint8_t *frame, int fw, int fh, size_t stride,
                    ls_err *err);

/* Where a uint8 UNet writes slot 0's output (slot b at + b * 320 * 320 * 3). */
uint8_t *pipe_unet_output_u8(const pipe_worker *w);

#endif
