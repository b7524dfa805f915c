/* cmd_tune.c - `lipsync tune`: measures a UNet's throughput at several batch sizes on this machine
 * (ort_tune.h) and prints the best size as the configuration lines that use it. */
#include "cli/commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "infer/ort_affinity.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"
#include "infer/ort_tune.h"

#define TUNE_MAX_BATCH 32 /* capacity.max_batch and stream.max_batch allow 1..32 */

typedef struct {
    const char *unet;
    int batches[ORT_TUNE_MAX_SIZES], n_batches;
    double seconds;
    int threads;   /* 0: one per allowed CPU */
    int affinity;  /* --affinity auto */
    int uint8_io;
    ort_ep_cfg ep;
} tune_opts;

static void tune_usage(FILE *out) {
    fprintf(out,
            "usage: lipsync tune --unet MODEL.onnx [--batches 1,2,4,8,16,25,32] [--seconds S]\n"
            "                    [--threads N] [--affinity none|auto] [--provider cpu|cuda] [--gpu N]\n"
            "                    [--uint8-io]\n\n"
            "Runs the UNet at each batch size for S seconds (default 3) and prints frames per second\n"
            "per size, the best size, and the configuration lines that use it. Let the machine be\n"
            "otherwise idle: the figures are what this machine does now.\n\n"
            "  --batches LIST     batch sizes, 1..%d each (default 1,2,4,8,16,25,32)\n"
            "  --threads N        ONNX Runtime intra-op threads (default: one per CPU this process may use)\n"
            "  --affinity MODE    none (default): the kernel places threads; auto: this thread and the\n"
            "                     pool's threads each pinned to their own CPU (as onnx.thread_affinity)\n"
            "  --provider P       cpu (default) or cuda; --gpu N: the CUDA device\n"
            "  --uint8-io         the UNet wrapped for uint8 images (as onnx.uint8_io)\n",
            TUNE_MAX_BATCH);
}

static int tune_parse(int argc, char **argv, tune_opts *o) {
    static const struct option longopts[] = {
        {"unet", required_argument, 0, 'u'},     {"batches", required_argument, 0, 'b'},
        {"seconds", required_argument, 0, 's'},  {"threads", required_argument, 0, 't'},
        {"affinity", required_argument, 0, 'a'}, {"provider", required_argument, 0, 'p'},
        {"gpu", required_argument, 0, 'g'},      {"uint8-io", no_argument, 0, '8'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    static const int defaults[] = {1, 2, 4, 8, 16, 25, 32};
    *o = (tune_opts){.seconds = 3, .n_batches = 7, .ep = {.kind = ORT_EP_CPU, .tf32 = -1, .cuda_graph = -1}};
    memcpy(o->batches, defaults, sizeof defaults);
    ls_err err;
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': o->unet = optarg; break;
        case 'b':
            if ((o->n_batches = ort_tune_parse_batches(optarg, o->batches, ORT_TUNE_MAX_SIZES, TUNE_MAX_BATCH, &err)) < 0) {
                fprintf(stderr, "lipsync tune: --batches: %s\n", err.msg);
                return 2;
            }
            break;
        case 's': if (cli_number("tune", optarg, 0, 3600, "--seconds", &o->seconds)) return 2; break;
        case 't': if (cli_int("tune", optarg, 1, 256, "--threads", &v)) return 2; o->threads = (int)v; break;
        case 'a': if (cli_choice("tune", optarg, "none", "auto", "--affinity", &o->affinity)) return 2; break;
        case 'p':
            if (ort_ep_kind_parse(optarg, &o->ep.kind)) {
                fprintf(stderr, "lipsync tune: --provider must be cpu or cuda, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'g': if (cli_int("tune", optarg, 0, 15, "--gpu", &v)) return 2; o->ep.device_id = (int)v; break;
        case '8': o->uint8_io = 1; break;
        case 'h': tune_usage(stdout); return 1;
        default: tune_usage(stderr); return 2;
        }
    }
    if (optind < argc) { fprintf(stderr, "lipsync tune: unexpected argument '%s'\n", argv[optind]); return 2; }
    if (!o->unet) { fprintf(stderr, "lipsync tune: --unet is required\n"); tune_usage(stderr); return 2; }
    if (o->affinity && o->ep.kind != ORT_EP_CPU) {
        fprintf(stderr, "lipsync tune: --affinity auto is for the CPU provider\n");
        return 2;
    }
    return 0;
}

/* Loads the UNet with the options' threads (and, with auto affinity, this thread pinned to the first
 * allowed CPU and the pool to the next ones, wrapping when there are more threads than CPUs). */
static ort_model *tune_load(ort_runtime *rt, tune_opts *o, ls_err *err) {
    int cpus[ORT_AFF_MAX_CPUS], pool[ORT_AFF_MAX_CPUS];
    int n = ort_aff_allowed(cpus, ORT_AFF_MAX_CPUS, err);
    if (n < 1) return NULL;
    if (o->threads == 0 && o->ep.kind == ORT_EP_CPU) o->threads = n;
    /* As lipsyncd loads its sessions: threads that do not spin, one inter-op thread. */
    ort_model_opts mo = {.intra_threads = o->threads, .inter_threads = 1, .no_spin = 1, .ep = &o->ep,
                         .uint8_io = o->uint8_io};
    if (o->affinity) {
        if (ort_aff_take(cpus, n, 1, o->threads - 1, pool) == 1)
            fprintf(stderr, "lipsync tune: %d threads on %d CPUs: some share a CPU\n", o->threads, n);
        if (ort_aff_pin_self(cpus, 1, err) != 0) return NULL;
        mo.pool_cpus = pool;
        mo.n_pool_cpus = o->threads - 1;
    }
    return ort_model_load(rt, o->unet, ORT_ROLE_UNET, &mo, err);
}

int cmd_tune(int argc, char **argv) {
    tune_opts o;
    int rc = tune_parse(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    ls_err err;
    ort_tune_point pts[ORT_TUNE_MAX_SIZES];
    ort_runtime *rt = ort_runtime_create(NULL, &err);
    ort_model *m = rt ? tune_load(rt, &o, &err) : NULL;
    if (m) {
        printf("UNet %s on %s, %d intra-op threads, affinity %s, %g s per size\n", o.unet, ort_model_ep_desc(m),
               o.threads, o.affinity ? "auto" : "none", o.seconds);
        fflush(stdout);
    }
    rc = m ? ort_tune_batches(m, o.batches, o.n_batches, o.seconds, pts, &err) : -1;
    if (rc == 0) {
        printf("%6s %10s %10s %10s %6s %10s\n", "batch", "frames/s", "min", "max", "runs", "ms/run");
        for (int i = 0; i < o.n_batches; i++)
            printf("%6d %10.2f %10.2f %10.2f %6d %10.1f\n", pts[i].batch, pts[i].fps, pts[i].fps_min, pts[i].fps_max,
                   pts[i].runs, pts[i].ms_run);
        const ort_tune_point *b = &pts[ort_tune_best(pts, o.n_batches)];
        printf("best: batch %d, %.2f frames/s\n", b->batch, b->fps);
        printf("lipsyncd.yaml:\n  capacity:\n    max_batch: %d\n  stream:\n    max_batch: %d\n", b->batch, b->batch);
    }
    ort_model_destroy(m);
    ort_runtime_destroy(rt);
    if (rc != 0) fprintf(stderr, "lipsync tune: %s\n", err.msg);
    return rc == 0 ? 0 : 1;
}
