/* commands.h - the subcommands of the `lipsync` program, one file each (src/cli/cmd_*.c).
 *
 * Each takes the arguments after its name (argv[0] is the subcommand's name), prints its own
 * usage and errors to stderr, and returns the process exit code (0 on success). */
#ifndef LS_COMMANDS_H
#define LS_COMMANDS_H

int cmd_render(int argc, char **argv);  /* lipsync render: audio + avatar -> video or frames */
int cmd_mel(int argc, char **argv);     /* lipsync mel: audio -> normalised mel as .npy */
int cmd_avatar(int argc, char **argv);  /* lipsync avatar build|info: make or inspect a package */
int cmd_client(int argc, char **argv);  /* lipsync client ...: talk to a running lipsyncd */
int cmd_tune(int argc, char **argv);    /* lipsync tune: the UNet batch size fastest here, measured */

#endif
