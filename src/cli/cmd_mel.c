/* cmd_mel.c - placeholder until the 'mel' subcommand lands; replaced by its real implementation. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_mel(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "lipsync %s: not built yet\n", argv[0]);
    return 1;
}
