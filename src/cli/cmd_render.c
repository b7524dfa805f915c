/* cmd_render.c - placeholder until the 'render' subcommand lands; replaced by its real implementation. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_render(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "lipsync %s: not built yet\n", argv[0]);
    return 1;
}
