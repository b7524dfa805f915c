/* pcm_priv.h - what pcm_convert.c and pcm_stream.c share; not part of the public API. */
#ifndef LS_PCM_PRIV_H
#define LS_PCM_PRIV_H

#include <libswresample/swresample.h>

#include "audio/pcm.h"

/* Resamples n_in samples of `in` (never NULL: NULL would make swr flush; n_in may be 0 to collect
 * what swr holds) into out, taking up to `room` samples including what swr buffered. Returns the
 * count, or -1 when swr fails. */
long pcm_swr_collect(SwrContext *swr, const float *in, size_t n_in, float *out, size_t room);

/* LS_EINVAL for a format, rate or channel count pcm.h does not take. */
int pcm_check_format(pcm_format fmt, int rate, int channels, ls_err *err);
/* Whole frames in n_bytes (> 0), or LS_EINVAL. */
int pcm_frames(size_t n_bytes, pcm_format fmt, int channels, size_t *n, ls_err *err);
/* Averages the channels of n interleaved frames into dst; f32 samples must be finite and within
 * PCM_MAX_ABS (LS_EINVAL naming the frame otherwise). */
int pcm_to_mono(const unsigned char *src, size_t n, pcm_format fmt, int channels, float *dst, ls_err *err);

#endif
