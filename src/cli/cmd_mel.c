/* cmd_mel.c - `lipsync mel IN -o OUT.npy`: the normalised mel spectrogram of an audio file as a
 * float32 .npy of shape [frames, 80] (the same rows the renderer feeds the audio encoder). */
#include <libavutil/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "audio/pcm.h"
#include "cli/commands.h"
#include "common/npy.h"

static int usage(FILE *out) {
    fprintf(out,
            "usage: lipsync mel IN -o OUT.npy\n\n"
            "Writes the normalised 80-bin log-mel spectrogram of IN as float32 [frames, 80].\n"
            "IN is any audio file FFmpeg decodes (resampled to 16 kHz mono, channels averaged)\n"
            "or a .npy of float32 16 kHz samples, shape [N] or [N, 1].\n\n"
            "options:\n"
            "  -o, --output FILE  the .npy to write (required)\n"
            "  -v, --verbose      let FFmpeg print its warnings\n"
            "  -h, --help         show this help\n");
    return out == stdout ? 0 : 2;
}

int cmd_mel(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i == argc) {
                fprintf(stderr, "lipsync mel: %s needs a file name\n", a);
                return usage(stderr);
            }
            out = argv[i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "lipsync mel: unknown option '%s'\n", a);
            return usage(stderr);
        } else if (!in) {
            in = a;
        } else {
            fprintf(stderr, "lipsync mel: more than one input ('%s', '%s')\n", in, a);
            return usage(stderr);
        }
    }
    if (!in || !out) {
        fprintf(stderr, "lipsync mel: %s\n", !in ? "no input file given" : "no output given (-o OUT.npy)");
        return usage(stderr);
    }
    if (!verbose) av_log_set_level(AV_LOG_ERROR);

    ls_err err = {0};
    size_t n = 0;
    float *pcm = pcm_load_file(in, 0, &n, &err), *mel = NULL;
    mel_ctx *ctx = NULL;
    int rc = 1;
    if (!pcm) goto done;
    const size_t rows = mel_frame_count(n);
    if (!(ctx = mel_create(&err))) goto done;
    if (!(mel = malloc(rows * MEL_BINS * sizeof(float)))) {
        ls_fail(&err, LS_ENOMEM, "out of memory for %zu mel rows", rows);
        goto done;
    }
    if (mel_compute(ctx, pcm, n, mel, rows, &err)) goto done;
    const size_t shape[2] = {rows, MEL_BINS};
    if (npy_write_f32(out, mel, shape, 2, &err)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "lipsync mel: %s (%s)\n", err.msg, ls_code_name(err.code));
    free(mel);
    mel_free(ctx);
    free(pcm);
    return rc;
}
