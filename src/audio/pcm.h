/* pcm.h - audio in: files and raw request bytes -> 16 kHz mono float samples.
 *
 * Two ways in, both yielding finite floats with |x| <= PCM_MAX_ABS at PCM_RATE, mono (channels
 * averaged), resampled with libswresample's default (windowed-sinc) filter:
 *  - pcm_load_file (load time, allocates): anything FFmpeg decodes, or a .npy of float32 16 kHz
 *    samples (shape [N] or [N, 1]); returns a malloc'd buffer the caller frees.
 *  - pcm_converter (per request, no allocation by this code after create): s16le / f32le
 *    interleaved bytes at 8000..48000 Hz, 1..PCM_MAX_CHANNELS channels, into a caller's buffer.
 *    Each converter keeps one SwrContext per recently used input rate (PCM_SWR_SLOTS, least
 *    recently used one replaced); a call re-initialises that context with swr_init() to start
 *    from clean filter state, which keeps its filter bank (it is only rebuilt when a slot changes
 *    rate) but lets libswresample re-malloc its small internal buffers. 16 kHz input bypasses it.
 *    One converter must not be used by two threads at once.
 * Errors: LS_EINVAL (empty, odd byte counts, NaN/Inf or huge samples, rates/channels out of range,
 * too long), LS_EFORMAT (undecodable, truncated or corrupt file), LS_ENOTFOUND, LS_EIO, LS_ENOMEM.
 * File errors name the file. */
#ifndef LS_PCM_H
#define LS_PCM_H

#include <stddef.h>

#include "common/err.h"

#define PCM_RATE 16000
#define PCM_MIN_RATE 8000
#define PCM_MAX_RATE 48000
#define PCM_MAX_CHANNELS 8
#define PCM_SWR_SLOTS 4
/* Float audio lives in [-1, 1]; anything far beyond is not speech and would overflow the FFT. */
#define PCM_MAX_ABS 1024.0f

/* Decodes path (FFmpeg; a name ending in ".npy" is read as float32 16 kHz samples) to 16 kHz
 * mono. max_samples > 0 limits the output length (LS_EINVAL beyond); 0 means no limit.
 * Returns a malloc'd buffer of *n_samples (> 0) floats, or NULL with err filled. */
float *pcm_load_file(const char *path, size_t max_samples, size_t *n_samples, ls_err *err);

typedef enum { PCM_S16LE = 1, PCM_F32LE = 2 } pcm_format;

typedef struct pcm_converter pcm_converter;

/* Creates a converter for requests of up to max_samples output samples (16 kHz). Allocates. */
pcm_converter *pcm_converter_create(size_t max_samples, ls_err *err);
void pcm_converter_free(pcm_converter *c);

/* Output count of n_frames input frames at rate Hz: ceil(n_frames * 16000 / rate), the 16 kHz
 * instants inside the input. pcm_convert writes exactly this many (out_cap must hold them), and
 * pcm_load_file yields this count for the decoded frames. */
size_t pcm_output_bound(size_t n_frames, int rate);

/* Zero input frames appended before resampling from rate Hz so that the filter's delay is drained
 * (more than half of libswresample's default 32-tap filter, scaled for downsampling). */
size_t pcm_swr_padding(int rate);

/* Converts n_bytes of interleaved fmt samples (channels per frame, rate Hz) to 16 kHz mono in
 * out[0 .. *n_out). Rejects (LS_EINVAL) n_bytes that is zero or not a whole number of frames,
 * non-finite or |x| > PCM_MAX_ABS f32 samples, rate outside PCM_MIN_RATE..PCM_MAX_RATE, channels
 * outside 1..PCM_MAX_CHANNELS, output longer than the converter's max_samples, or out_cap below
 * pcm_output_bound(). The whole request is one signal: the resampler starts clean, the end is
 * zero padded, and *n_out is exactly pcm_output_bound(n_frames, rate) (n_frames at 16 kHz). */
int pcm_convert(pcm_converter *c, const void *bytes, size_t n_bytes, pcm_format fmt, int rate,
                int channels, float *out, size_t out_cap, size_t *n_out, ls_err *err);

/* A live signal arriving in chunks (a Stream session), one format, rate and channel count: the same
 * conversion as pcm_convert of all the chunks concatenated, sample for sample, since the resampler
 * keeps its state across chunks. A push yields the 16 kHz samples completed so far (at most
 * pcm_stream_bound(s, n_bytes); a short chunk may yield none); pcm_stream_finish ends the signal
 * (zero padding, as pcm_convert) and gives the remaining tail, so that the total is exactly
 * pcm_output_bound(all frames, rate); calling it again gives the same tail. pcm_stream_reset
 * starts a new signal. Create allocates (max_frames: the longest chunk in input frames); push and
 * finish do not in this code (libswresample may grow its own buffers). One thread at a time.
 * Errors as pcm_convert (LS_EINVAL), and LS_EINVAL for audio after finish without a reset. */
typedef struct pcm_stream pcm_stream;

pcm_stream *pcm_stream_create(pcm_format fmt, int rate, int channels, size_t max_frames, ls_err *err);
void pcm_stream_free(pcm_stream *s); /* NULL is fine */
void pcm_stream_reset(pcm_stream *s);
size_t pcm_stream_bound(const pcm_stream *s, size_t n_bytes);
int pcm_stream_push(pcm_stream *s, const void *bytes, size_t n_bytes, float *out, size_t out_cap, size_t *n_out,
                    ls_err *err);
int pcm_stream_finish(pcm_stream *s, const float **tail, size_t *n, ls_err *err);

#endif
