/* cli_args.h - option values of the `lipsync` subcommands, parsed strictly.
 *
 * Each parser takes the subcommand's name (for the message), the option's text and name, and on a
 * bad value prints "lipsync CMD: NAME must be ..., got 'TEXT'" to stderr and returns -1; on success
 * it stores the value and returns 0. Nothing allocates. */
#ifndef LS_CLI_ARGS_H
#define LS_CLI_ARGS_H

/* A whole number in lo..hi (no trailing characters). */
int cli_int(const char *cmd, const char *s, long long lo, long long hi, const char *name, long long *out);

/* A number in lo..hi. */
int cli_number(const char *cmd, const char *s, double lo, double hi, const char *name, double *out);

/* One of two words: *out = 0 for `first`, 1 for `second`. */
int cli_choice(const char *cmd, const char *s, const char *first, const char *second, const char *name, int *out);

#endif
