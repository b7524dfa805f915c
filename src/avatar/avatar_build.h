/* avatar_build.h - make an avatar package folder from a video or a frames folder plus boxes.
 *
 * Writes out_dir/manifest.json, out_dir/crop_rects.json (boxes given directly or computed from
 * landmarks with avatar_box_from_landmarks), and either out_dir/frames/NNNN.<ext> (files copied
 * byte for byte, renumbered from 0) or the video copied as out_dir/source.<ext>. Model paths are
 * written relative to out_dir (the models are referenced, not copied). Then the package is loaded
 * back with avatar_load to prove it valid. out_dir must not exist yet or be an empty folder; on
 * any failure everything written is removed again. Allocates only while running. Errors as in
 * avatar.h, plus LS_EINVAL for contradictory or missing options and LS_EIO for write failures. */
#ifndef LS_AVATAR_BUILD_H
#define LS_AVATAR_BUILD_H

#include "avatar/avatar.h"

typedef struct avatar_build_opts {
    const char *out_dir;
    const char *video;      /* exactly one of video and frames_dir */
    const char *frames_dir;
    const char *boxes;      /* exactly one of boxes (crop_rects.json) and landmarks */
    const char *landmarks;
    const char *unet;       /* model files; must exist */
    const char *encoder;
    const char *name;       /* NULL: the out_dir's last path component */
    int fps;                /* 0: 25 */
} avatar_build_opts;

/* Builds the package; *loaded (may be NULL) receives the loaded-back avatar (caller frees). */
int avatar_build(const avatar_build_opts *o, avatar **loaded, ls_err *err);

#endif
