/* cli_args.c - strict option values for the subcommands (cli_args.h). */
#include "cli/cli_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_int(const char *cmd, const char *s, long long lo, long long hi, const char *name, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "lipsync %s: %s must be an integer in %lld..%lld, got '%s'\n", cmd, name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_number(const char *cmd, const char *s, double lo, double hi, const char *name, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "lipsync %s: %s must be a number in %g..%g, got '%s'\n", cmd, name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_choice(const char *cmd, const char *s, const char *first, const char *second, const char *name, int *out) {
    if (strcmp(s, first) && strcmp(s, second)) {
        fprintf(stderr, "lipsync %s: %s must be %s or %s, got '%s'\n", cmd, name, first, second, s);
        return -1;
    }
    *out = strcmp(s, first) != 0;
    return 0;
}
