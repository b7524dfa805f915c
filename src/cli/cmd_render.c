/* cmd_render.c - `lipsync render`: an avatar and an audio file in, a lip-synced MP4 (or JPEG
 * frames) out, through the same library calls the server uses (src/pipeline). */
#include "cli/commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio/pcm.h"
#include "cli/cli_args.h"
#include "avatar/avatar.h"
#include "infer/ort_affinity.h"
#include "infer/ort_model.h"
#include "infer/ort_runtime.h"
#include "media/video_in.h"
#include "media/video_out.h"
#include "pipeline/avatar_cache.h"
#include "pipeline/clip.h"
#include "pipeline/encode.h"
#include "pipeline/render.h"

typedef struct render_opts {
    const char *avatar_dir, *audio_path, *out_mp4, *frames_dir, *unet_path, *encoder_path;
    const char *cache_dir;  /* optimised ONNX graphs (ort_cache_path); "" = none */
    int batch, threads, quality;
    long long start_frame;
    ort_ep_cfg ep;          /* --provider / --gpu */
    int uint8_io;           /* --uint8-io */
    int pipeline;           /* --pipeline on|off: UNet beside prep and composite (render.h) */
    int affinity;           /* --affinity auto */
} render_opts;

/* Where finished frames go: the MP4 writer, JPEG files, or both; plus terminal progress. JPEG
 * files go through the server's path (spliced into per-avatar-frame backgrounds, encode.h), so
 * their bytes equal lipsyncd's for the same request and quality. */
typedef struct render_sink {
    media_writer *mp4;
    const char *frames_dir;
    pipe_jpeg_enc *jpeg;
    pipe_jpeg_set *jset;
    int quality;
    size_t total;
    int show_progress;
    uint64_t started_ns;
} render_sink;

static void render_usage(FILE *out) {
    fprintf(out,
            "usage: lipsync render --avatar DIR --audio FILE (--out OUT.mp4 | --frames DIR)\n"
            "                      [--batch N] [--start-frame K] [--threads N] [--quality Q]\n"
            "                      [--unet MODEL.onnx] [--encoder MODEL.onnx] [--cache-dir DIR]\n"
            "                      [--provider cpu|cuda] [--gpu N] [--uint8-io] [--pipeline on|off]\n"
            "                      [--affinity none|auto]\n\n"
            "  --avatar DIR       avatar package (lipsync avatar build makes one)\n"
            "  --audio FILE       speech: WAV or anything FFmpeg reads, or a float32 .npy at 16 kHz\n"
            "  --out OUT.mp4      write a video with the audio muxed in\n"
            "  --frames DIR       write frames as DIR/000000.jpg ...\n"
            "  --batch N          UNet batch size, 1..%d (default 4)\n"
            "  --start-frame K    avatar frame the first video frame shows (default 0)\n"
            "  --threads N        ONNX Runtime threads per operator (default: one per core)\n"
            "  --quality Q        JPEG quality for --frames, 1..100 (default 75)\n"
            "  --unet, --encoder  use these models instead of the avatar's\n"
            "  --cache-dir DIR    keep ONNX Runtime's optimised graphs here ('' = off;\n"
            "                     default %s)\n"
            "  --provider P       cpu (default) or cuda: ONNX Runtime's CUDA build (docs/gpu.md)\n"
            "  --gpu N            CUDA device (default 0)\n"
            "  --uint8-io         wrap the UNet to take and return uint8 images (same pixels;\n"
            "                     less to copy to a GPU)\n"
            "  --pipeline on|off  run the UNet on its own thread while the next batch is prepared\n"
            "                     and the previous one composited (default on; same frames)\n"
            "  --affinity MODE    none (default) or auto: this thread on the first CPU it may use, the\n"
            "                     models' intra-op threads on the next ones (CPU provider)\n",
            PIPE_MAX_BATCH, LS_DEFAULT_ORT_CACHE_DIR);
}

static int render_parse(int argc, char **argv, render_opts *o) {
    static const struct option longopts[] = {
        {"avatar", required_argument, 0, 'a'}, {"audio", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},    {"frames", required_argument, 0, 'f'},
        {"batch", required_argument, 0, 'b'},  {"start-frame", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"quality", required_argument, 0, 'q'},
        {"unet", required_argument, 0, 'u'},   {"encoder", required_argument, 0, 'e'},
        {"cache-dir", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'},
        {"provider", required_argument, 0, 'p'}, {"gpu", required_argument, 0, 'g'},
        {"uint8-io", no_argument, 0, '8'},       {"pipeline", required_argument, 0, 'P'},
        {"affinity", required_argument, 0, 'A'}, {0, 0, 0, 0}};
    *o = (render_opts){.batch = 4, .pipeline = 1, .quality = JPEG_DEFAULT_QUALITY, .cache_dir = LS_DEFAULT_ORT_CACHE_DIR,
                       .ep = {.kind = ORT_EP_CPU, .tf32 = -1, .cuda_graph = -1}};
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': o->avatar_dir = optarg; break;
        case 'i': o->audio_path = optarg; break;
        case 'o': o->out_mp4 = optarg; break;
        case 'f': o->frames_dir = optarg; break;
        case 'u': o->unet_path = optarg; break;
        case 'e': o->encoder_path = optarg; break;
        case 'c': o->cache_dir = optarg; break;
        case 'b': if (cli_int("render", optarg, 1, PIPE_MAX_BATCH, "--batch", &v)) return 2; o->batch = (int)v; break;
        case 's': if (cli_int("render", optarg, 0, 1000000000, "--start-frame", &v)) return 2; o->start_frame = v; break;
        case 't': if (cli_int("render", optarg, 0, 256, "--threads", &v)) return 2; o->threads = (int)v; break;
        case 'q': if (cli_int("render", optarg, 1, 100, "--quality", &v)) return 2; o->quality = (int)v; break;
        case 'p':
            if (ort_ep_kind_parse(optarg, &o->ep.kind)) {
                fprintf(stderr, "lipsync render: --provider must be cpu or cuda, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'g': if (cli_int("render", optarg, 0, 15, "--gpu", &v)) return 2; o->ep.device_id = (int)v; break;
        case '8': o->uint8_io = 1; break;
        case 'P':
            if (cli_choice("render", optarg, "off", "on", "--pipeline", &o->pipeline)) return 2;
            break;
        case 'A':
            if (cli_choice("render", optarg, "none", "auto", "--affinity", &o->affinity)) return 2;
            break;
        case 'h': render_usage(stdout); return 1;
        default: render_usage(stderr); return 2;
        }
    }
    if (optind < argc) { fprintf(stderr, "lipsync render: unexpected argument '%s'\n", argv[optind]); return 2; }
    if (!o->avatar_dir || !o->audio_path || (!o->out_mp4 && !o->frames_dir)) {
        fprintf(stderr, "lipsync render: --avatar, --audio and one of --out or --frames are required\n");
        render_usage(stderr);
        return 2;
    }
    return 0;
}

static int sink_frame(void *ctx, const pipe_frame *f, ls_err *err) {
    render_sink *s = ctx;
    if (s->mp4 && media_writer_write(s->mp4, f->bgr, err) != 0) return -1;
    if (s->frames_dir) {
        const uint8_t *jpg;
        size_t len;
        char path[4096];
        if (pipe_jpeg_encode(s->jpeg, s->jset, f, s->quality, &jpg, &len, err)) return -1;
        snprintf(path, sizeof path, "%s/%06zu.jpg", s->frames_dir, f->index);
        FILE *fp = fopen(path, "wb");
        if (!fp) return ls_fail(err, LS_EIO, "cannot create %s: %s", path, strerror(errno));
        size_t wrote = fwrite(jpg, 1, len, fp);
        if (fclose(fp) != 0 || wrote != len) return ls_fail(err, LS_EIO, "cannot write %s", path);
    }
    if (s->show_progress) {
        double secs = (double)(pipe_now_ns() - s->started_ns) / 1e9;
        fprintf(stderr, "\rrendering frame %zu/%zu  %.1f fps ", f->index + 1, s->total,
                secs > 0 ? (double)(f->index + 1) / secs : 0.0);
    }
    return 0;
}

/* JPEG files only: the sink reads the spliced segments (MP4 needs whole frames: no region). */
static int sink_region(void *ctx, const pipe_frame *f, ls_box *need, ls_err *err) {
    render_sink *s = ctx;
    return pipe_jpeg_region(s->jset, f, s->quality, need, err);
}

/* Everything one render holds, freed in one place. */
typedef struct render_state {
    avatar *av;
    float *pcm, *mel, *feats;
    ort_runtime *rt;
    ort_model *encoder, *unet;
    pipe_worker *worker;
    pipe_avcache *prepared;
    pipe_jpeg_set *jset;
    pipe_jpeg_enc *jpeg;
    media_writer *mp4;
} render_state;

static void render_state_free(render_state *st) {
    media_writer_abort(st->mp4);
    pipe_jpeg_enc_free(st->jpeg);
    pipe_jpeg_set_free(st->jset);
    pipe_avcache_free(st->prepared);
    pipe_worker_destroy(st->worker);
    ort_model_destroy(st->unet);
    ort_model_destroy(st->encoder);
    ort_runtime_destroy(st->rt);
    free(st->feats);
    free(st->mel);
    free(st->pcm);
    avatar_free(st->av);
}

/* --affinity auto: this thread (which runs both models, one after the other) on the first allowed
 * CPU (*self; pinned by the caller once the worker exists, so that a pipelined worker's runner
 * thread does not inherit it), and each model's pool on the next intra_threads - 1, wrapping if
 * there are fewer CPUs. */
static int plan_threads(ort_model_opts *mo, int *pool, int *self, ls_err *err) {
    int cpus[ORT_AFF_MAX_CPUS];
    int n = ort_aff_allowed(cpus, ORT_AFF_MAX_CPUS, err);
    if (n < 1) return -1;
    if (mo->intra_threads == 0) mo->intra_threads = n;
    ort_aff_take(cpus, n, 1, mo->intra_threads - 1, pool);
    mo->pool_cpus = pool;
    mo->n_pool_cpus = mo->intra_threads - 1;
    *self = cpus[0];
    return 0;
}

static int render_run(const render_opts *o, render_state *st, ls_err *err) {
    size_t n_samples, n_frames;
    if (!(st->av = avatar_load(o->avatar_dir, err))) return -1;
    if (!(st->pcm = pcm_load_file(o->audio_path, 0, &n_samples, err))) return -1;
    if (pipe_clip_frames(n_samples) == 0)
        return ls_fail(err, LS_EINVAL, "%s: audio too short (%.3f s); at least 0.19 s is needed",
                       o->audio_path, (double)n_samples / PCM_RATE);
    st->mel = malloc(pipe_clip_mel_floats(n_samples) * sizeof(float));
    st->feats = malloc(pipe_clip_feat_floats(n_samples) * sizeof(float));
    if (!st->mel || !st->feats) return ls_fail(err, LS_ENOMEM, "out of memory for the audio features");
    /* The encoder runs once per clip, before the UNet: its threads must not spin into the UNet's
     * time (bench: end-to-end / UNet-only at batch 8 went from 0.885 to 0.930). */
    ort_model_opts mo = {.intra_threads = o->threads, .no_spin = 1, .ep = &o->ep};
    int pool[ORT_AFF_MAX_CPUS];
    int self_cpu = -1;
    if (o->affinity && o->ep.kind == ORT_EP_CPU && plan_threads(&mo, pool, &self_cpu, err) != 0) return -1;
    char enc_cache[4200], unet_cache[4200];
    if (!(st->rt = ort_runtime_create(NULL, err))) return -1;
    const char *enc_path = o->encoder_path ? o->encoder_path : st->av->encoder_path;
    const char *unet_path = o->unet_path ? o->unet_path : st->av->unet_path;
    if (*o->cache_dir) mkdir(o->cache_dir, 0755); /* may exist; if it cannot be made: no cache */
    mo.optimized_path = ort_cache_path(o->cache_dir, enc_path, enc_cache, sizeof enc_cache) ? NULL : enc_cache;
    /* As in lipsyncd (registry_models.c): the encoder's batch follows the clip, no CUDA graphs. */
    ort_ep_cfg enc_ep = o->ep;
    enc_ep.cuda_graph = 0;
    mo.ep = &enc_ep;
    if (!(st->encoder = ort_model_load(st->rt, enc_path, ORT_ROLE_ENCODER, &mo, err))) return -1;
    mo.ep = &o->ep;
    mo.optimized_path = ort_cache_path(o->cache_dir, unet_path, unet_cache, sizeof unet_cache) ? NULL : unet_cache;
    mo.no_spin = 0;
    mo.uint8_io = o->uint8_io;
    if (!(st->unet = ort_model_load(st->rt, unet_path, ORT_ROLE_UNET, &mo, err))) return -1;
    pipe_worker_cfg wc = {.max_batch = o->batch, .max_frame_w = st->av->width,
                          .max_frame_h = st->av->height, .jpeg_quality = o->quality,
                          .pipeline = o->pipeline};
    if (!(st->worker = pipe_worker_create(&wc, err))) return -1;
    if (self_cpu >= 0 && ort_aff_pin_self(&self_cpu, 1, err) != 0) return -1;
    if (pipe_worker_bind(st->worker, st->encoder, st->unet, err) != 0) return -1;
    if (pipe_clip_features(st->worker, st->pcm, n_samples, st->mel, st->feats, &n_frames, err) != 0)
        return ls_wrap(err, "%s", o->audio_path);
    if (o->frames_dir && mkdir(o->frames_dir, 0755) != 0 && errno != EEXIST)
        return ls_fail(err, LS_EIO, "cannot create %s: %s", o->frames_dir, strerror(errno));
    /* The fast path, as lipsyncd: prepared crops for every avatar frame; JPEG backgrounds built on
     * first use (a clip shows each avatar frame at most a few times). */
    if (!(st->prepared = pipe_avcache_create(st->av, err))) return -1;
    if (o->frames_dir && (!(st->jset = pipe_jpeg_set_create(st->av, o->quality, 0, 0, err)) ||
                          !(st->jpeg = pipe_jpeg_enc_create(st->av->width, st->av->height, err))))
        return -1;
    if (o->out_mp4) {
        media_writer_cfg mc = {.width = st->av->width, .height = st->av->height, .fps = 25,
                               .audio = st->pcm, .audio_samples = n_samples, .audio_rate = PCM_RATE};
        if (!(st->mp4 = media_writer_open(o->out_mp4, &mc, err))) return -1;
    }
    render_sink sink = {.mp4 = st->mp4, .frames_dir = o->frames_dir, .jpeg = st->jpeg, .jset = st->jset,
                        .quality = o->quality,
                        .total = n_frames, .show_progress = isatty(STDERR_FILENO),
                        .started_ns = pipe_now_ns()};
    pipe_render_req req = {.av = st->av, .feats = st->feats, .n_frames = n_frames, .first = 0,
                           .count = n_frames, .start_frame = o->start_frame, .prepared = st->prepared,
                           .region = st->mp4 ? NULL : sink_region};
    pipe_timings t = {0};
    int rc = pipe_render(st->worker, &req, sink_frame, &sink, &t, err);
    if (sink.show_progress) fputc('\n', stderr);
    if (rc != 0) return -1;
    if (st->mp4) {
        media_writer *mp4 = st->mp4;
        st->mp4 = NULL; /* close frees it, also on error */
        if (media_writer_close(mp4, err) != 0) return -1;
    }
    double secs = (double)(pipe_now_ns() - sink.started_ns) / 1e9;
    fprintf(stderr, "rendered %zu frames in %.2f s (%.1f fps): prep %.1f ms, UNet %.1f ms, "
            "paste %.1f ms, output %.1f ms per frame\n", n_frames, secs, (double)n_frames / secs,
            t.prep_ns / 1e6 / n_frames, t.unet_ns / 1e6 / n_frames, t.paste_ns / 1e6 / n_frames,
            t.sink_ns / 1e6 / n_frames);
    return 0;
}

int cmd_render(int argc, char **argv) {
    render_opts o;
    int rc = render_parse(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    media_quiet_ffmpeg_logs();
    render_state st = {0};
    ls_err err = {0};
    rc = render_run(&o, &st, &err);
    render_state_free(&st);
    if (rc != 0) {
        fprintf(stderr, "lipsync render: %s\n", err.msg);
        return 1;
    }
    return 0;
}
