/* main.c - the `lipsync` command-line program: dispatches to one subcommand (see commands.h). */
#include "cli/commands.h"
#include "common/hugepages.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"render", cmd_render, "render a lip-synced video from an avatar and an audio file"},
    {"mel", cmd_mel, "write the normalised mel spectrogram of an audio file as .npy"},
    {"avatar", cmd_avatar, "build or inspect an avatar package"},
    {"client", cmd_client, "talk to a running lipsyncd"},
    {"tune", cmd_tune, "measure the UNet batch size that runs fastest on this machine"},
};

static int usage(FILE *out) {
    fprintf(out, "usage: lipsync <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'lipsync <command> --help' for a command's options.\n");
    return out == stdout ? 0 : 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage(stdout);
    /* The UNet's arena (hugepages.h): tune measures what render and lipsyncd get. */
    if (!strcmp(argv[1], "render") || !strcmp(argv[1], "tune")) ls_hugepages_reexec(argv);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lipsync: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
