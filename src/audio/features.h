/* features.h - from mel rows to the audio encoder's inputs and the UNet's per-frame audio block.
 *
 * Video frames (25 fps) are matched to mel rows (80 per second) as SyncTalk_2D does:
 *   L = int((mel_frames - 16) / 80. * 25) + 2 frames, frame k's 16-row mel window starts at
 *   int(80. * (k / 25.)), shifted back to end at mel_frames when it would run past the end.
 * Both are evaluated in double precision in the reference's exact order: the float rounding of the
 * reference changes L for some lengths (e.g. 384 mel frames give 116, not 117), and we must agree.
 * The encoder's L outputs (512 floats each) are conceptually extended by duplicating the first and
 * last rows (L + 2 rows); frame i takes rows i-8 .. i+7 of that, zero rows past either edge.
 * feat_window builds that block straight from the L rows, without materialising the copy.
 * Nothing here allocates or keeps state. */
#ifndef LS_FEATURES_H
#define LS_FEATURES_H

#include <stddef.h>

#include "common/err.h"

#define FEAT_MEL_WINDOW 16  /* mel rows per encoder input */
#define FEAT_MEL_BINS 80
#define FEAT_ENC_DIM 512    /* encoder output per window */
#define FEAT_CONTEXT 16     /* encoder rows per video frame: 16 x 512 = [32, 16, 16] */

/* Number of video frames L for mel_frames rows; 0 when mel_frames < 16 (too short for a window). */
size_t feat_frame_count(size_t mel_frames);

/* First mel row of frame k's window (k < feat_frame_count(mel_frames); mel_frames >= 16). */
size_t feat_mel_window_start(size_t k, size_t mel_frames);

/* Writes frame k's window transposed, out80x16[b * 16 + t] = mel[(start + t) * 80 + b], as the
 * encoder's [1, 80, 16] input. LS_EINVAL when mel_frames < 16 or k >= feat_frame_count(). */
int feat_encoder_input(const float *mel, size_t mel_frames, size_t k, float *out80x16, ls_err *err);

/* Writes frame i's FEAT_CONTEXT x FEAT_ENC_DIM block (row-major; the UNet reads it as [32,16,16])
 * from enc_rows (L x 512). Duplicated row j (0 .. L+1) is enc_rows[clamp(j - 1, 0, L - 1)]; block
 * row r is duplicated row i - 8 + r, or zeros when that is outside 0 .. L+1.
 * LS_EINVAL when L == 0 or i >= L. */
int feat_window(const float *enc_rows, size_t L, size_t i, float *out, ls_err *err);

#endif
