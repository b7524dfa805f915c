/* unet_io.c - a worker's UNet batch slots for float or uint8 UNets (see unet_io.h). */
#include "pipeline/unet_io.h"

#include <string.h>

#include "image/paste.h"
#include "image/prepare.h"

#define U8_OUT_BYTES ((size_t)PREP_SIZE * PREP_SIZE * 3)

int pipe_unet_is_u8(const pipe_worker *w) { return w->unet && ort_model_role(w->unet) == ORT_ROLE_UNET_U8; }

uint8_t *pipe_unet_output_u8(const pipe_worker *w) { return (uint8_t *)w->unet_output; }

int pipe_unet_prepare(pipe_worker *w, int b, const avatar *av, int idx, const pipe_avcache *prepared,
                      const float *image_in, ls_err *err) {
    uint8_t *crop = w->crops + (size_t)b * PREP_CROP_BYTES;
    float *input = w->unet_image + (size_t)b * ORT_UNET_IMG_ELEMS;
    int rc = 0;
    if (pipe_unet_is_u8(w)) {
        /* The model reads the whole crop: copy all of it, not only the border. */
        if (prepared) memcpy(crop, pipe_avcache_crop(prepared, idx), PREP_CROP_BYTES);
        else rc = prep_crop(avatar_frame(av, idx), av->width, av->height, (size_t)av->width * 3, av->boxes[idx],
                            crop, &w->resize, err);
        if (rc == 0 && image_in) prep_crop_from_input(image_in, crop);
        return rc;
    }
    if (prepared) pipe_avcache_prepare(prepared, idx, crop, input);
    else rc = prep_frame(avatar_frame(av, idx), av->width, av->height, (size_t)av->width * 3, av->boxes[idx], crop,
                         input, &w->resize, err);
    if (rc == 0 && image_in) memcpy(input, image_in, sizeof(float) * ORT_UNET_IMG_ELEMS);
    return rc;
}

int pipe_unet_paste(pipe_worker *w, int b, ls_box box, uint8_t *frame, int fw, int fh, size_t stride,
                    ls_err *err) {
    const uint8_t *crop = w->crops + (size_t)b * PREP_CROP_BYTES;
    if (pipe_unet_is_u8(w))
        return paste_frame_u8(pipe_unet_output_u8(w) + (size_t)b * U8_OUT_BYTES, crop, box, frame, fw, fh, stride,
                              &w->resize, err);
    return paste_frame(w->unet_output + (size_t)b * ORT_UNET_OUT_ELEMS, crop, box, frame, fw, fh, stride, &w->resize,
                       err);
}
