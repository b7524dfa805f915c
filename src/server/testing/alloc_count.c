/* alloc_count.c - the allocation counter of lipsyncd_alloccount, a test build of lipsyncd
 * (tests/server_alloc.cmake) that proves a warm request allocates nothing in lipsyncd's own code.
 *
 * "Our code" is everything compiled from this repository and linked statically into the
 * program: lipsync_core, lipsync_server, the protoc-c descriptors, main.c. The program is linked
 * with -Wl,--wrap=SYM for each allocating call below, which redirects exactly those calls (and
 * no call made inside a shared library: gRPC, ONNX Runtime, FFmpeg, libc...) to __wrap_SYM here.
 * Counted: the C allocators, and the library calls through which our code would create
 * something (FILE, DIR, realpath's buffer, FFmpeg frames/contexts, resamplers, TurboJPEG
 * handles, FFTW buffers, PNG decoders, JSON trees). Not counted: what libraries allocate inside
 * calls that create nothing for us (gRPC sending a reply, ORT running a session, libc's stdio).
 *
 * The counter is process-wide by nature (malloc is), hence the file-scope atomics; it is read
 * through the test-only method /lipsyncd.testing.Testing/AllocCount (builtin.c), which exists
 * only in this build. It remembers the call sites of the last SITES allocations so a failing
 * test can name the line that allocated (addr2line on the printed offsets). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fftw3.h>
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/mem.h>
#include <libswresample/swresample.h>
#include <limits.h>
#include <spng.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define SITES 64

static atomic_llong g_count;
static _Atomic(uintptr_t) g_sites[SITES];
static _Atomic(const char *) g_names[SITES];

static void counted(const char *name, void *site) {
    long long i = atomic_fetch_add(&g_count, 1);
    atomic_store(&g_sites[i % SITES], (uintptr_t)site);
    atomic_store(&g_names[i % SITES], name);
}
#define COUNT(name) counted(name, __builtin_return_address(0))

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n) { COUNT("malloc"); return __real_malloc(n); }
void *__real_calloc(size_t n, size_t s);
void *__wrap_calloc(size_t n, size_t s) { COUNT("calloc"); return __real_calloc(n, s); }
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n) { COUNT("realloc"); return __real_realloc(p, n); }
char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s) { COUNT("strdup"); return __real_strdup(s); }
char *__real_strndup(const char *s, size_t n);
char *__wrap_strndup(const char *s, size_t n) { COUNT("strndup"); return __real_strndup(s, n); }
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n) { COUNT("aligned_alloc"); return __real_aligned_alloc(a, n); }
char *__real_realpath(const char *p, char *out);
char *__wrap_realpath(const char *p, char *out) {
    if (!out) COUNT("realpath"); /* only realpath(p, NULL) allocates */
    return __real_realpath(p, out);
}
FILE *__real_fopen(const char *p, const char *m);
FILE *__wrap_fopen(const char *p, const char *m) { COUNT("fopen"); return __real_fopen(p, m); }
DIR *__real_opendir(const char *p);
DIR *__wrap_opendir(const char *p) { COUNT("opendir"); return __real_opendir(p); }
void *__real_av_malloc(size_t n);
void *__wrap_av_malloc(size_t n) { COUNT("av_malloc"); return __real_av_malloc(n); }
AVFrame *__real_av_frame_alloc(void);
AVFrame *__wrap_av_frame_alloc(void) { COUNT("av_frame_alloc"); return __real_av_frame_alloc(); }
AVPacket *__real_av_packet_alloc(void);
AVPacket *__wrap_av_packet_alloc(void) { COUNT("av_packet_alloc"); return __real_av_packet_alloc(); }
AVCodecContext *__real_avcodec_alloc_context3(const AVCodec *c);
AVCodecContext *__wrap_avcodec_alloc_context3(const AVCodec *c) {
    COUNT("avcodec_alloc_context3");
    return __real_avcodec_alloc_context3(c);
}
int __real_swr_alloc_set_opts2(SwrContext **s, const AVChannelLayout *ol, enum AVSampleFormat of, int orate,
                               const AVChannelLayout *il, enum AVSampleFormat inf, int irate, int lo, void *lc);
int __wrap_swr_alloc_set_opts2(SwrContext **s, const AVChannelLayout *ol, enum AVSampleFormat of, int orate,
                               const AVChannelLayout *il, enum AVSampleFormat inf, int irate, int lo, void *lc) {
    COUNT("swr_alloc_set_opts2");
    return __real_swr_alloc_set_opts2(s, ol, of, orate, il, inf, irate, lo, lc);
}
tjhandle __real_tjInitCompress(void);
tjhandle __wrap_tjInitCompress(void) { COUNT("tjInitCompress"); return __real_tjInitCompress(); }
tjhandle __real_tjInitDecompress(void);
tjhandle __wrap_tjInitDecompress(void) { COUNT("tjInitDecompress"); return __real_tjInitDecompress(); }
unsigned char *__real_tjAlloc(int n);
unsigned char *__wrap_tjAlloc(int n) { COUNT("tjAlloc"); return __real_tjAlloc(n); }
void *__real_fftwf_malloc(size_t n);
void *__wrap_fftwf_malloc(size_t n) { COUNT("fftwf_malloc"); return __real_fftwf_malloc(n); }
spng_ctx *__real_spng_ctx_new(int flags);
spng_ctx *__wrap_spng_ctx_new(int flags) { COUNT("spng_ctx_new"); return __real_spng_ctx_new(flags); }
cJSON *__real_cJSON_ParseWithLength(const char *s, size_t n);
cJSON *__wrap_cJSON_ParseWithLength(const char *s, size_t n) {
    COUNT("cJSON_ParseWithLength");
    return __real_cJSON_ParseWithLength(s, n);
}

/* Called by the AllocCount test method (builtin.c, weak reference): "allocations=N" and, for
 * each remembered allocation numbered >= since, "site NAME MODULE+0xOFFSET SYMBOL". */
int srv_testing_alloc_report(long long since, char *buf, size_t cap) {
    long long n = atomic_load(&g_count);
    int len = snprintf(buf, cap, "allocations=%lld\n", n);
    long long from = since > n - SITES ? since : n - SITES;
    for (long long i = from < 0 ? 0 : from; i < n && len >= 0 && (size_t)len < cap; i++) {
        uintptr_t site = atomic_load(&g_sites[i % SITES]);
        const char *name = atomic_load(&g_names[i % SITES]);
        Dl_info info;
        memset(&info, 0, sizeof info);
        dladdr((void *)site, &info);
        len += snprintf(buf + len, cap - (size_t)len, "site %s %s+0x%llx %s\n", name ? name : "?",
                        info.dli_fname ? info.dli_fname : "?",
                        (unsigned long long)(site - (uintptr_t)info.dli_fbase),
                        info.dli_sname ? info.dli_sname : "?");
    }
    return len;
}
