/* test_avatar.c - avatar packages: the landmark box rule, the ping-pong walk, loading from a frames
 * folder and from a video, and clean errors for broken packages. */
#include <stdint.h>

#include "avatar/avatar.h"
#include "avatar_fixture.h"
#include "check.h"
#include "media/video_in.h"
#include "media/video_out.h"

TEST(landmarks_give_the_golden_boxes_on_all_523_frames) {
    ls_box *got = NULL, *want = NULL;
    int n_got = 0, n_want = 0;
    ls_err err = {0};
    CHECK(avatar_read_boxes(check_golden("crop_rects_523.json"), -1, &want, &n_want, &err) == 0, "%s", err.msg);
    CHECK(avatar_read_landmarks(check_golden("landmarks_523x110.json"), 523, &got, &n_got, &err) == 0,
          "%s", err.msg);
    CHECK(n_got == 523 && n_want == 523, "523 frames, got %d and %d", n_got, n_want);
    for (int i = 0; i < 523; i++) /* exact: the rule is integer arithmetic after truncation */
        CHECK(got[i].x1 == want[i].x1 && got[i].y1 == want[i].y1 && got[i].x2 == want[i].x2 &&
                  got[i].y2 == want[i].y2,
              "frame %d: got [%d,%d,%d,%d], golden [%d,%d,%d,%d]", i, got[i].x1, got[i].y1, got[i].x2,
              got[i].y2, want[i].x1, want[i].y1, want[i].x2, want[i].y2);
    free(got);
    free(want);
}

TEST(box_rule_truncates_toward_zero_like_python_int) {
    double xy[2 * 110] = {0};
    xy[2 * 1] = 10.9;       /* p1.x  -> x1 = 10 */
    xy[2 * 52 + 1] = -0.5;  /* p52.y -> y1 = int(-0.5) = 0 */
    xy[2 * 31] = 50.99;     /* p31.x -> x2 = 50 */
    ls_box b;
    ls_err err = {0};
    CHECK(avatar_box_from_landmarks(xy, 110, &b, &err) == 0, "%s", err.msg);
    CHECK(b.x1 == 10 && b.y1 == 0 && b.x2 == 50 && b.y2 == 40, "got [%d,%d,%d,%d]", b.x1, b.y1, b.x2, b.y2);
}

TEST(box_rule_rejects_too_few_points_and_non_finite_values) {
    double xy[2 * 110] = {0};
    ls_box b;
    ls_err err = {0};
    CHECK(avatar_box_from_landmarks(xy, 52, &b, &err) == -1 && err.code == LS_EINVAL, "52 points are too few");
    xy[2 * 31] = NAN;
    CHECK(avatar_box_from_landmarks(xy, 110, &b, &err) == -1 && err.code == LS_EINVAL, "NaN rejected");
    xy[2 * 31] = INFINITY;
    CHECK(avatar_box_from_landmarks(xy, 110, &b, &err) == -1, "Inf rejected");
    xy[2 * 31] = 1e7;
    CHECK(avatar_box_from_landmarks(xy, 110, &b, &err) == -1, "huge coordinate rejected");
}

TEST(pingpong_with_one_frame_always_shows_frame_0) {
    for (int64_t k = 0; k < 10; k++) CHECK(avatar_frame_index(k, 0, 1) == 0, "k=%lld", (long long)k);
    CHECK(avatar_frame_index(INT64_MAX, 7, 1) == 0, "huge k");
}

TEST(pingpong_with_two_frames_alternates) {
    static const int want[] = {0, 1, 0, 1, 0, 1};
    for (int k = 0; k < 6; k++) CHECK(avatar_frame_index(k, 0, 2) == want[k], "k=%d", k);
    for (int k = 0; k < 6; k++) CHECK(avatar_frame_index(k, 1, 2) == want[k + 1 < 6 ? k + 1 : 0], "start 1, k=%d", k);
}

TEST(pingpong_with_five_frames_goes_forward_then_back) {
    static const int want[] = {0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0, 1};
    for (int k = 0; k < 18; k++) CHECK(avatar_frame_index(k, 0, 5) == want[k], "k=%d", k);
    for (int s = 0; s < 12; s++) /* start shifts the walk: frame k+s of the start-0 walk */
        for (int k = 0; k + s < 18; k++)
            CHECK(avatar_frame_index(k, s, 5) == want[k + s], "start %d, k=%d", s, k);
}

TEST(pingpong_is_exact_for_huge_k_and_start) {
    /* Period 8 for n = 5: 8e15 + 3 -> 3; INT64_MAX % 8 = 7, so 7 + 7 = 14 -> 6 -> 8 - 6 = 2. */
    CHECK(avatar_frame_index(8000000000000003LL, 0, 5) == 3, "8e15+3");
    CHECK(avatar_frame_index(INT64_MAX, 0, 5) == 1, "INT64_MAX -> 7 -> 1");
    CHECK(avatar_frame_index(INT64_MAX, INT64_MAX, 5) == 2, "no overflow in start + k");
    CHECK(avatar_frame_index(-1, 0, 5) == -1 && avatar_frame_index(0, -1, 5) == -1 &&
              avatar_frame_index(0, 0, 0) == -1, "negative k, start or n < 1 rejected");
}

TEST(pingpong_start_1_is_synctalks_inference_walk) {
    /* SyncTalk_2D inference.py, literally: len_img = n - 1; step; img_idx updated before use. */
    int n = 7, len_img = n - 1, img_idx = 0, step = 0;
    for (int k = 0; k < 100; k++) {
        if (img_idx > len_img - 1) step = -1;
        if (img_idx < 1) step = 1;
        img_idx += step;
        CHECK(avatar_frame_index(k, 1, n) == img_idx, "k=%d: reference %d", k, img_idx);
    }
}

static int near_pattern(const avatar *a, int i, int tol, int *bad_x, int *bad_y) {
    unsigned char *want = malloc((size_t)a->width * a->height * 3);
    fx_pattern(want, a->width, a->height, i);
    const uint8_t *got = avatar_frame(a, i);
    int ok = 1;
    for (int p = 0; ok && p < a->width * a->height * 3; p++)
        if (abs((int)got[p] - (int)want[p]) > tol) ok = 0, *bad_x = (p / 3) % a->width, *bad_y = p / 3 / a->width;
    free(want);
    return ok;
}

TEST(loads_a_frames_folder_with_boxes_and_models) {
    char *dir = fx_avatar(3, 3, 64, 48);
    ls_err err = {0};
    avatar *a = avatar_load(dir, &err);
    CHECK(a, "%s", err.msg);
    CHECK(a->width == 64 && a->height == 48 && a->frame_count == 3 && a->fps == 25, "sizes from manifest");
    CHECK(!strcmp(a->name, "t"), "name");
    for (int i = 0; i < 3; i++)
        CHECK(a->boxes[i].x1 == 1 && a->boxes[i].y1 == 1 && a->boxes[i].x2 == 63 && a->boxes[i].y2 == 47, "box %d", i);
    int bx = 0, by = 0;
    for (int i = 0; i < 3; i++) /* JPEG q95 4:2:0 of a smooth gradient: within 6 levels per value */
        CHECK(near_pattern(a, i, 6, &bx, &by), "frame %d differs at (%d,%d)", i, bx, by);
    char *unet = fx_path(dir, "unet.onnx"), *enc = fx_path(dir, "../enc.onnx");
    CHECK(!strcmp(a->unet_path, unet) && !strcmp(a->encoder_path, enc), "model paths relative to the folder");
    size_t pixels = 3u * 64 * 48 * 3;
    CHECK(avatar_bytes(a) >= pixels && avatar_bytes(a) < pixels + 4096, "memory %zu for %zu pixel bytes",
          avatar_bytes(a), pixels);
    free(unet);
    free(enc);
    avatar_free(a);
    fx_rmtree(dir);
}

TEST(loads_a_video_source_decoded_once) {
    char *dir = fx_avatar(1, 4, 64, 48); /* boxes and manifest for 4 frames; replace the frames */
    int w = 64, h = 48;
    char *video = fx_path(dir, "source.mp4");
    media_writer_cfg cfg = {.width = w, .height = h, .fps = 25, .codec = MEDIA_CODEC_MJPEG};
    ls_err err = {0};
    media_writer *mw = media_writer_open(video, &cfg, &err);
    CHECK(mw, "%s", err.msg);
    unsigned char *bgr = malloc((size_t)w * h * 3);
    for (int i = 0; i < 4; i++) {
        fx_pattern(bgr, w, h, i);
        CHECK(media_writer_write(mw, bgr, &err) == 0, "%s", err.msg);
    }
    free(bgr);
    CHECK(media_writer_close(mw, &err) == 0, "%s", err.msg);
    char *manifest = fx_path(dir, "manifest.json");
    fx_text(manifest, "{\"fps\": 25, \"width\": 64, \"height\": 48, \"frame_count\": 4, \"video\": \"source.mp4\","
                      " \"boxes\": \"crop_rects.json\", \"unet\": \"u.onnx\", \"encoder\": \"e.onnx\"}");
    avatar *a = avatar_load(dir, &err);
    CHECK(a, "%s", err.msg);
    CHECK(a->frame_count == 4 && a->width == 64 && a->height == 48, "4 frames of 64x48");
    int bx = 0, by = 0;
    for (int i = 0; i < 4; i++) /* MJPEG 4:2:0 plus two colour conversions: within 10 levels */
        CHECK(near_pattern(a, i, 10, &bx, &by), "frame %d differs at (%d,%d)", i, bx, by);
    avatar_free(a);
    free(manifest);
    free(video);
    fx_rmtree(dir);
}

/* Loads dir expecting failure with `code` and a message containing `needle`. */
static int fails_with(const char *dir, ls_code code, const char *needle, ls_err *err) {
    avatar *a = avatar_load(dir, err);
    if (a) {
        avatar_free(a);
        snprintf(err->msg, sizeof err->msg, "loaded although broken");
        return 0;
    }
    return err->code == code && strstr(err->msg, needle) != NULL;
}

TEST(more_frames_than_the_manifest_says_is_an_error) {
    char *dir = fx_avatar(3, 2, 32, 32);
    ls_err err = {0};
    CHECK(fails_with(dir, LS_EFORMAT, "holds 3 frames", &err), "got: %s", err.msg);
    fx_rmtree(dir);
}

TEST(box_count_must_match_frame_count) {
    char *dir = fx_avatar(3, 3, 32, 32);
    char *p = fx_path(dir, "crop_rects.json");
    fx_text(p, "[[1, 1, 30, 30], [1, 1, 30, 30]]");
    ls_err err = {0};
    CHECK(fails_with(dir, LS_EFORMAT, "has 2 entries but the avatar has 3 frames", &err), "got: %s", err.msg);
    free(p);
    fx_rmtree(dir);
}

TEST(box_outside_its_frame_is_an_error_naming_the_frame) {
    char *dir = fx_avatar(3, 3, 32, 32);
    char *p = fx_path(dir, "crop_rects.json");
    fx_text(p, "[[1, 1, 30, 30], [0, 0, 33, 32], [1, 1, 30, 30]]");
    ls_err err = {0};
    CHECK(fails_with(dir, LS_EFORMAT, "box of frame 1 [0, 0, 33, 32]", &err), "got: %s", err.msg);
    fx_text(p, "[[1, 1, 30, 30], [1, 1, 30, 30], [5, 5, 5, 9]]");
    CHECK(fails_with(dir, LS_EFORMAT, "box 2 [5, 5, 5, 9] is empty", &err), "got: %s", err.msg);
    fx_text(p, "[[1, 1, 30, 30], [1, 1, 30.5, 30], [1, 1, 30, 30]]");
    CHECK(fails_with(dir, LS_EFORMAT, "box 1 is not a list of 4 integers", &err), "got: %s", err.msg);
    free(p);
    fx_rmtree(dir);
}

TEST(missing_folder_manifest_or_frames_are_not_found) {
    ls_err err = {0};
    CHECK(fails_with("/nonexistent/avatar", LS_ENOTFOUND, "does not exist", &err), "got: %s", err.msg);
    char *dir = fx_avatar(2, 2, 32, 32);
    char *frames = fx_path(dir, "frames"), *moved = fx_path(dir, "elsewhere");
    CHECK(rename(frames, moved) == 0, "rename");
    CHECK(fails_with(dir, LS_ENOTFOUND, "frames", &err), "got: %s", err.msg);
    char *manifest = fx_path(dir, "manifest.json");
    CHECK(unlink(manifest) == 0, "unlink");
    CHECK(fails_with(dir, LS_ENOTFOUND, "manifest.json", &err), "got: %s", err.msg);
    free(frames);
    free(moved);
    free(manifest);
    fx_rmtree(dir);
}

TEST(corrupt_or_missized_frames_are_errors_naming_the_file) {
    char *dir = fx_avatar(3, 3, 64, 48);
    char *p = fx_path(dir, "frames/0002.jpg");
    struct stat st;
    CHECK(stat(p, &st) == 0 && truncate(p, st.st_size * 2 / 3) == 0, "truncate"); /* scan data cut short */
    ls_err err = {0};
    CHECK(fails_with(dir, LS_EFORMAT, "0002.jpg: corrupt JPEG", &err), "got: %s", err.msg);
    fx_text(p, "not an image");
    CHECK(fails_with(dir, LS_EFORMAT, "0002.jpg: neither a JPEG nor a PNG", &err), "got: %s", err.msg);
    fx_jpeg(p, 32, 48, 2);
    CHECK(fails_with(dir, LS_EFORMAT, "0002.jpg: image is 32x48, expected 64x48", &err), "got: %s", err.msg);
    free(p);
    fx_rmtree(dir);
}

TEST(a_gap_in_frame_numbers_is_an_error) {
    char *dir = fx_avatar(3, 2, 32, 32);
    char *p = fx_path(dir, "frames/0001.jpg");
    CHECK(unlink(p) == 0, "unlink");
    ls_err err = {0};
    CHECK(fails_with(dir, LS_EFORMAT, "frame number 1 is missing", &err), "got: %s", err.msg);
    free(p);
    fx_rmtree(dir);
}

TEST(manifest_errors_are_reported) {
    char *dir = fx_avatar(2, 2, 32, 32);
    char *p = fx_path(dir, "manifest.json");
    ls_err err = {0};
    fx_text(p, "{not json");
    CHECK(fails_with(dir, LS_EFORMAT, "not valid JSON", &err), "got: %s", err.msg);
    fx_text(p, "{\"fps\": 25, \"width\": 32, \"height\": 32, \"frame_count\": 2, \"frames\": \"../frames\","
               " \"boxes\": \"crop_rects.json\", \"unet\": \"u\", \"encoder\": \"e\"}");
    CHECK(fails_with(dir, LS_EFORMAT, "must be a relative path inside", &err), "got: %s", err.msg);
    fx_text(p, "{\"fps\": 25, \"width\": 32, \"height\": 32, \"frame_count\": 2, \"frames\": \"frames\","
               " \"video\": \"v.mp4\", \"boxes\": \"crop_rects.json\", \"unet\": \"u\", \"encoder\": \"e\"}");
    CHECK(fails_with(dir, LS_EFORMAT, "exactly one of \"frames\" and \"video\"", &err), "got: %s", err.msg);
    fx_text(p, "{\"fps\": 25, \"width\": 32, \"height\": 1e9, \"frame_count\": 2, \"frames\": \"frames\","
               " \"boxes\": \"crop_rects.json\", \"unet\": \"u\", \"encoder\": \"e\"}");
    CHECK(fails_with(dir, LS_EFORMAT, "\"height\"", &err), "got: %s", err.msg);
    free(p);
    fx_rmtree(dir);
}

TEST(loads_parts_from_explicit_paths_limited_to_num_frames) {
    char *dir = fx_avatar(4, 4, 64, 48); /* frames/ and crop_rects.json, used without the manifest */
    char *frames = fx_path(dir, "frames"), *boxes = fx_path(dir, "crop_rects.json");
    ls_err err = {0};
    avatar_parts p = {.name = "alice", .frames_dir = frames, .boxes_path = boxes,
                      .unet_path = "/m/unet.onnx", .encoder_path = "/m/enc.onnx", .max_frames = 3};
    avatar *a = avatar_load_parts(&p, &err);
    CHECK(a, "%s", err.msg);
    CHECK(a->frame_count == 3 && a->width == 64 && a->height == 48, "3 of 4 frames, size from frame 0");
    CHECK(!strcmp(a->name, "alice") && !strcmp(a->unet_path, "/m/unet.onnx") &&
          !strcmp(a->encoder_path, "/m/enc.onnx"), "name and model paths as given");
    int bx = 0, by = 0;
    for (int i = 0; i < 3; i++) /* JPEG q95 4:2:0 of a smooth gradient: within 6 levels per value */
        CHECK(near_pattern(a, i, 6, &bx, &by), "frame %d differs at (%d,%d)", i, bx, by);
    CHECK(a->boxes[2].x2 == 63 && a->boxes[2].y2 == 47, "boxes read");
    avatar_free(a);
    p.max_frames = 0; /* all 4 frames */
    a = avatar_load_parts(&p, &err);
    CHECK(a && a->frame_count == 4, "all frames: %s", a ? "" : err.msg);
    avatar_free(a);
    fx_text(boxes, "[[1, 1, 63, 47], [1, 1, 63, 47]]");
    a = avatar_load_parts(&p, &err);
    CHECK(!a && err.code == LS_EFORMAT && strstr(err.msg, "2 boxes for 4 frames"), "too few boxes: %s", err.msg);
    p.video = "x.mp4";
    a = avatar_load_parts(&p, &err);
    CHECK(!a && err.code == LS_EINVAL, "frames and video both given");
    free(frames);
    free(boxes);
    fx_rmtree(dir);
}

int main(void) {
    media_quiet_ffmpeg_logs();
    RUN(landmarks_give_the_golden_boxes_on_all_523_frames);
    RUN(box_rule_truncates_toward_zero_like_python_int);
    RUN(box_rule_rejects_too_few_points_and_non_finite_values);
    RUN(pingpong_with_one_frame_always_shows_frame_0);
    RUN(pingpong_with_two_frames_alternates);
    RUN(pingpong_with_five_frames_goes_forward_then_back);
    RUN(pingpong_is_exact_for_huge_k_and_start);
    RUN(pingpong_start_1_is_synctalks_inference_walk);
    RUN(loads_a_frames_folder_with_boxes_and_models);
    RUN(loads_a_video_source_decoded_once);
    RUN(more_frames_than_the_manifest_says_is_an_error);
    RUN(box_count_must_match_frame_count);
    RUN(box_outside_its_frame_is_an_error_naming_the_frame);
    RUN(missing_folder_manifest_or_frames_are_not_found);
    RUN(corrupt_or_missized_frames_are_errors_naming_the_file);
    RUN(a_gap_in_frame_numbers_is_an_error);
    RUN(manifest_errors_are_reported);
    RUN(loads_parts_from_explicit_paths_limited_to_num_frames);
    return check_summary();
}
