/* cmd_avatar.c - `lipsync avatar build|info`: make an avatar package or describe one. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avatar/avatar.h"
#include "avatar/avatar_build.h"
#include "cli/commands.h"
#include "media/video_in.h"

static int usage(FILE *out) {
    fprintf(out,
            "usage: lipsync avatar build --out DIR (--video FILE | --frames DIR)\n"
            "                            (--boxes crop_rects.json | --landmarks FILE)\n"
            "                            --unet FILE --encoder FILE [--name NAME] [--fps N]\n"
            "       lipsync avatar info DIR\n\n"
            "build  writes a package folder: manifest.json, crop_rects.json and the frames (copied\n"
            "       as frames/NNNN.jpg|png) or the video (copied as source.<ext>); model paths are\n"
            "       stored relative to DIR. The package is loaded back to check it.\n"
            "info   loads a package and prints its name, size, frames, fps, models and memory.\n");
    return out == stdout ? 0 : 2;
}

static void print_model(const char *what, const char *path) {
    char real[PATH_MAX];
    if (realpath(path, real) && access(real, R_OK) == 0) printf("%-8s %s\n", what, real);
    else printf("%-8s %s  (missing)\n", what, path);
}

static void print_info(const avatar *a) {
    printf("name     %s\n", a->name);
    printf("folder   %s\n", a->dir);
    printf("size     %dx%d\n", a->width, a->height);
    printf("frames   %d (%.2f s at %d fps)\n", a->frame_count, (double)a->frame_count / a->fps, a->fps);
    printf("fps      %d\n", a->fps);
    print_model("unet", a->unet_path);
    print_model("encoder", a->encoder_path);
    int wmin = a->boxes[0].x2 - a->boxes[0].x1, wmax = wmin;
    for (int i = 1; i < a->frame_count; i++) {
        int w = box_width(a->boxes[i]);
        wmin = w < wmin ? w : wmin;
        wmax = w > wmax ? w : wmax;
    }
    printf("boxes    %d, width %d..%d px\n", a->frame_count, wmin, wmax);
    printf("memory   %.1f MiB\n", (double)avatar_bytes(a) / (1024.0 * 1024.0));
}

static int info(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') return usage(stderr);
    ls_err err = {0};
    avatar *a = avatar_load(argv[1], &err);
    if (!a) {
        fprintf(stderr, "lipsync avatar info: %s\n", err.msg);
        return 1;
    }
    print_info(a);
    avatar_free(a);
    return 0;
}

static int build(int argc, char **argv) {
    avatar_build_opts o = {0};
    static const char *names[] = {"--out", "--video", "--frames", "--boxes", "--landmarks",
                                  "--unet", "--encoder", "--name", "--fps"};
    const char **slots[] = {&o.out_dir, &o.video, &o.frames_dir, &o.boxes, &o.landmarks,
                            &o.unet, &o.encoder, &o.name, NULL};
    const char *fps = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout);
        size_t k = 0;
        while (k < sizeof names / sizeof names[0] && strcmp(argv[i], names[k])) k++;
        if (k == sizeof names / sizeof names[0]) {
            fprintf(stderr, "lipsync avatar build: unknown option '%s'\n", argv[i]);
            return usage(stderr);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "lipsync avatar build: %s needs a value\n", argv[i]);
            return 2;
        }
        *(slots[k] ? slots[k] : &fps) = argv[++i];
    }
    if (fps) {
        char *end;
        long v = strtol(fps, &end, 10);
        if (*end || v < 1 || v > 240) {
            fprintf(stderr, "lipsync avatar build: --fps must be an integer in 1..240\n");
            return 2;
        }
        o.fps = (int)v;
    }
    if (!o.out_dir) {
        fprintf(stderr, "lipsync avatar build: --out is required\n");
        return usage(stderr);
    }
    ls_err err = {0};
    avatar *a = NULL;
    if (avatar_build(&o, &a, &err) != 0) {
        fprintf(stderr, "lipsync avatar build: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s\n", o.out_dir);
    print_info(a);
    avatar_free(a);
    return 0;
}

int cmd_avatar(int argc, char **argv) {
    media_quiet_ffmpeg_logs();
    if (argc < 2) return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage(stdout);
    if (!strcmp(argv[1], "build")) return build(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return info(argc - 1, argv + 1);
    fprintf(stderr, "lipsync avatar: unknown subcommand '%s'\n", argv[1]);
    return usage(stderr);
}
