/* avatar.h - an avatar package: its frames decoded into memory, one face box per frame, models.
 *
 * A package is a folder with manifest.json:
 *   {"name": "demo", "fps": 25, "width": 1280, "height": 720, "frame_count": 250,
 *    "frames": "frames"            (folder of N.jpg|jpeg|png, any zero padding, consecutive numbers)
 *      | "video": "source.mp4",    (decoded once at load)
 *    "boxes": "crop_rects.json"    ([[x1,y1,x2,y2], ...] one per frame)
 *      | "landmarks": "landmarks.json" ([[[x,y] x 110], ...] one per frame; see box rule below),
 *    "unet": "unet.onnx", "encoder": "../../models/encoder.onnx"}
 * Data paths (frames/video/boxes/landmarks) must be relative names inside the folder (no absolute
 * paths, no ".." parts; symlinks are followed: whoever can write the folder is trusted anyway).
 * Model paths are relative to the folder and MAY point outside it (shared models); they are only
 * resolved here, not opened (src/infer reports a missing model).
 *
 * avatar_load allocates everything once: all frames as one BGR24 block, so the hot path indexes
 * frames without decoding. The avatar is read-only after load and may be shared between threads.
 * Errors: LS_ENOTFOUND (missing folder/manifest/file), LS_EFORMAT (bad JSON, counts or sizes that
 * disagree, a box outside its frame, undecodable image), LS_EINVAL, LS_ENOMEM. */
#ifndef LS_AVATAR_H
#define LS_AVATAR_H

#include <stddef.h>
#include <stdint.h>

#include "common/box.h"
#include "common/err.h"

#define AVATAR_MAX_FRAMES 100000
#define AVATAR_MAX_DIM 8192
#define AVATAR_LANDMARKS 110 /* points per frame in a landmarks file */

typedef struct avatar {
    char *name;
    char *dir;          /* the folder as given to avatar_load */
    char *unet_path;    /* model paths resolved against dir */
    char *encoder_path;
    int width, height, fps, frame_count;
    uint8_t *frames;    /* frame_count frames of height rows x width*3 bytes, BGR, no padding */
    ls_box *boxes;      /* frame_count boxes, each inside its frame and non-empty */
} avatar;

avatar *avatar_load(const char *dir, ls_err *err);
void avatar_free(avatar *a); /* NULL is fine */

/* An avatar described by explicit paths instead of a package (the Go server's `models:` layout).
 * Exactly one of frames_dir (numbered images, as in a package) and video; boxes_path is a
 * crop_rects.json holding at least as many boxes as frames are used (extra boxes are ignored);
 * max_frames > 0 keeps only the first max_frames frames. The size comes from the first frame.
 * Model paths are copied as given (not opened). Same errors and allocation as avatar_load;
 * a->dir is the frames folder or the video's path. */
typedef struct avatar_parts {
    const char *name;
    const char *frames_dir, *video;
    const char *boxes_path;
    const char *unet_path, *encoder_path;
    int max_frames;
} avatar_parts;

avatar *avatar_load_parts(const avatar_parts *p, ls_err *err);

/* Frame i's pixels (0 <= i < frame_count; not checked: hot path). */
static inline const uint8_t *avatar_frame(const avatar *a, int i) {
    return a->frames + (size_t)i * a->height * a->width * 3;
}

/* Bytes the loaded avatar holds in memory (frames, boxes, strings, the struct). */
size_t avatar_bytes(const avatar *a);

/* The face box from n (x, y) landmarks (xy holds 2n values), the SyncTalk_2D rule with 0-based
 * indices and each coordinate truncated toward zero as Python's int() does:
 *   x1 = p[1].x, y1 = p[52].y, x2 = p[31].x, y2 = y1 + (x2 - x1).
 * Needs n >= 53 and finite coordinates within +-1e6; it does not check the box against a frame.
 * Returns 0, or -1 with err filled. */
int avatar_box_from_landmarks(const double *xy, int n, ls_box *box, ls_err *err);

/* Which avatar frame video frame k shows when the audio may outlast the clip: a ping-pong walk
 * t = start + k over 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ... (period 2(n-1); n == 1 -> always 0).
 * start >= 0 is where the walk begins (frame `start` if start < n, else the frame the walk reaches
 * after `start` steps), so a stream can continue where the previous call stopped. SyncTalk_2D's
 * inference.py walk (1, 2, ..., n-1, n-2, ...) is start = 1. Exact for any k, start up to
 * INT64_MAX. Returns -1 when n < 1 or k or start is negative. */
int avatar_frame_index(int64_t k, int64_t start, int n);

/* Lists a frames folder: files named <digits>.jpg|.jpeg|.png (case-insensitive extension), sorted
 * by number, numbers consecutive (a gap or a duplicate number is an error naming the file).
 * *names receives count malloc'd file names in one malloc'd array; free with avatar_names_free.
 * Other files are ignored. An empty folder is an error. */
int avatar_list_frames(const char *dir, char ***names, int *count, ls_err *err);
void avatar_names_free(char **names, int count);

/* Reads a crop_rects.json file: exactly `expect` boxes (expect < 0: any count >= 1). *boxes is
 * malloc'd, *count set. Boxes are only checked to be 4 integers with x1 < x2 and y1 < y2. */
int avatar_read_boxes(const char *path, int expect, ls_box **boxes, int *count, ls_err *err);

/* Reads a landmarks file and converts each frame with avatar_box_from_landmarks. */
int avatar_read_landmarks(const char *path, int expect, ls_box **boxes, int *count, ls_err *err);

#endif
