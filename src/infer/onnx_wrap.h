/* onnx_wrap.h - the user's UNet wrapped, in memory, so that only uint8 images cross to the device.
 *
 * onnx_wrap_unet_u8() takes the bytes of a SyncTalk_2D UNet export (`input` float [B,6,320,320],
 * `audio` float [B,32,16,16] -> `output` float [B,3,320,320]) and returns a new serialized ONNX
 * model that does the pipeline's pre- and post-processing itself:
 *   crop_u8   uint8 [B,328,328,3]  the 328x328 BGR crop exactly as prep_frame makes it (HWC)
 *   audio     float [B,32,16,16]   unchanged
 *   output_u8 uint8 [B,320,320,3]  HWC BGR, byte for byte what paste_pred_to_crop writes into
 *                                  crop[4:324, 4:324]
 * Pre: Slice [4:324,4:324] -> Cast float -> Div 255 (true division, as prepare.c) -> Transpose NCHW
 * = real; masked = real * mask (0 on PREP_MASK_*); Concat(real, masked) feeds the UNet's `input`.
 * Post: Mul 255 -> NaN to 0 -> Clip 0..255 -> Floor -> Cast uint8 -> Transpose NHWC (= to_u8 in
 * paste.c). Batch dims stay as in the original (fixed or symbolic); opsets, other inputs/outputs,
 * weights and metadata are kept. Added names start with ONNX_WRAP_PREFIX.
 *
 * Memory: the input bytes are only read; *out is malloc'd (caller frees). Runs once per model load,
 * so it allocates (about twice the model's size while it runs) and frees all of it.
 * Errors: -1 and
 *   LS_EINVAL   NULL out/out_len
 *   LS_EFORMAT  not an ONNX model (garbage, empty, truncated, no graph, nested absurdly deep)
 *   LS_EMODEL   missing or mis-shaped `input`/`audio`/`output`, external data, default-domain opset
 *               below 11, or names that collide with the wrapper's (e.g. an already wrapped model)
 *   LS_ENOMEM   allocation failure */
#ifndef LS_ONNX_WRAP_H
#define LS_ONNX_WRAP_H

#include <stddef.h>

#include "common/err.h"

#define ONNX_WRAP_PREFIX "lipsync_u8/" /* every node and value the wrapper adds */
#define ONNX_WRAP_INPUT "crop_u8"
#define ONNX_WRAP_OUTPUT "output_u8"
#define ONNX_WRAP_MIN_OPSET 11 /* Clip with min/max inputs */

int onnx_wrap_unet_u8(const void *model, size_t len, void **out, size_t *out_len, ls_err *err);

#endif
