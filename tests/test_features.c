/* test_features.c - video frame count, mel window placement, encoder input layout and the
 * per-frame 16x512 encoder block (edge duplication and zero padding), with hand-worked values. */
#include "check.h"
#include "audio/features.h"
#include "common/err.h"

#include <string.h>

TEST(frame_count_follows_the_reference_formula) {
    /* L = int((n - 16) / 80. * 25) + 2, worked by hand: */
    CHECK(feat_frame_count(15) == 0, "shorter than one 16-row window: no frames");
    CHECK(feat_frame_count(0) == 0, "empty");
    CHECK(feat_frame_count(16) == 2, "0/80*25 = 0 -> 2");
    CHECK(feat_frame_count(17) == 2, "1/80*25 = 0.3125 -> 2");
    CHECK(feat_frame_count(52) == 13, "36/80*25 = 11.25 -> 13 (640 ms golden clip)");
    CHECK(feat_frame_count(96) == 27, "80/80*25 = 25 -> 27");
    /* 368/80. = 4.6 is stored as 4.59999..., times 25 gives 114.99999999999999: the reference
     * truncates that to 114, so 116 frames, not the 117 exact arithmetic would give. */
    CHECK(feat_frame_count(384) == 116, "float rounding of the reference kept: %zu",
          feat_frame_count(384));
}

TEST(window_start_is_80k_over_25_clamped_to_the_end) {
    CHECK(feat_mel_window_start(0, 52) == 0, "k=0");
    CHECK(feat_mel_window_start(1, 52) == 3, "80*0.04 = 3.2 -> 3");
    CHECK(feat_mel_window_start(5, 52) == 16, "80*0.2 = 16");
    CHECK(feat_mel_window_start(11, 52) == 35, "35.2 -> 35, ends at 51 <= 52");
    CHECK(feat_mel_window_start(12, 52) == 36, "38.4 -> 38 would end at 54 > 52: 52-16 = 36");
    CHECK(feat_mel_window_start(1, 16) == 0, "a 16-row spectrogram has one window position");
}

TEST(encoder_input_is_the_window_transposed_to_80x16) {
    enum { N = 52 };
    static float mel[N * 80], out[80 * 16];
    for (int t = 0; t < N; t++)
        for (int b = 0; b < 80; b++) mel[t * 80 + b] = (float)(t * 1000 + b);
    ls_err e;
    CHECK(feat_encoder_input(mel, N, 12, out, &e) == 0, "%s", e.msg);
    for (int b = 0; b < 80; b++)
        for (int t = 0; t < 16; t++) /* frame 12 starts at row 36 (see above) */
            CHECK(out[b * 16 + t] == (float)((36 + t) * 1000 + b), "bin %d step %d", b, t);
    CHECK(feat_encoder_input(mel, N, 13, out, &e) == -1 && e.code == LS_EINVAL, "k = L rejected");
    CHECK(feat_encoder_input(mel, 15, 0, out, &e) == -1 && e.code == LS_EINVAL, "15 rows rejected");
}

/* enc row r holds (r + 1) * 1000 + column, so a block row identifies its source row. */
static void check_block(size_t L, size_t i, const int *src_row /* 16 entries, -1 = zeros */) {
    static float enc[64 * 512], out[16 * 512];
    for (size_t r = 0; r < L; r++)
        for (int c = 0; c < 512; c++) enc[r * 512 + c] = (float)((r + 1) * 1000 + (size_t)c);
    memset(out, 0x7f, sizeof out); /* garbage: every element must be written */
    ls_err e;
    CHECK(feat_window(enc, L, i, out, &e) == 0, "%s", e.msg);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 512; c++) {
            float want = src_row[r] < 0 ? 0.0f : (float)((src_row[r] + 1) * 1000 + c);
            CHECK(out[r * 512 + c] == want, "L=%zu i=%zu block row %d col %d: %g, want %g", L, i, r,
                  c, out[r * 512 + c], want);
        }
}

TEST(window_pads_and_duplicates_at_both_edges) {
    /* Duplicated rows D = [e0, e0, .., e(L-1), e(L-1)] (L + 2); block row r = D[i - 8 + r]. */
    const int l1_i0[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, -1, -1, -1, -1, -1};
    check_block(1, 0, l1_i0);
    const int l2_i0[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 1, 1, -1, -1, -1, -1};
    check_block(2, 0, l2_i0);
    const int l2_i1[16] = {-1, -1, -1, -1, -1, -1, -1, 0, 0, 1, 1, -1, -1, -1, -1, -1};
    check_block(2, 1, l2_i1);
    const int l3_i0[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 1, 2, 2, -1, -1, -1};
    check_block(3, 0, l3_i0);
    const int l3_i2[16] = {-1, -1, -1, -1, -1, -1, 0, 0, 1, 2, 2, -1, -1, -1, -1, -1};
    check_block(3, 2, l3_i2);
}

TEST(window_in_the_middle_is_rows_i_minus_9_to_i_plus_6) {
    /* D[j] = e[j - 1] away from the edges, so D[i-8 .. i+7] = e[i-9 .. i+6]. */
    const int l40_i20[16] = {11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26};
    check_block(40, 20, l40_i20);
    const int l40_i39[16] = {30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 39, -1, -1, -1, -1, -1};
    check_block(40, 39, l40_i39);
}

TEST(window_rejects_frames_outside_0_to_L) {
    float enc[512] = {0}, out[16 * 512];
    ls_err e;
    CHECK(feat_window(enc, 1, 1, out, &e) == -1 && e.code == LS_EINVAL, "i = L");
    CHECK(feat_window(enc, 0, 0, out, &e) == -1 && e.code == LS_EINVAL, "L = 0");
}

int main(void) {
    RUN(frame_count_follows_the_reference_formula);
    RUN(window_start_is_80k_over_25_clamped_to_the_end);
    RUN(encoder_input_is_the_window_transposed_to_80x16);
    RUN(window_pads_and_duplicates_at_both_edges);
    RUN(window_in_the_middle_is_rows_i_minus_9_to_i_plus_6);
    RUN(window_rejects_frames_outside_0_to_L);
    return check_summary();
}
