/* avatar_frames.c - listing a numbered frames folder (the numbering rule lives here). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "avatar/avatar.h"

typedef struct entry {
    long number;
    char *name;
} entry;

/* "0012.jpg" -> 12; -1 when the name is not <digits>.jpg|.jpeg|.png. */
static long frame_number(const char *name) {
    size_t d = 0;
    while (isdigit((unsigned char)name[d])) d++;
    if (d == 0 || d > 9 || name[d] != '.') return -1;
    const char *ext = name + d + 1;
    if (strcasecmp(ext, "jpg") && strcasecmp(ext, "jpeg") && strcasecmp(ext, "png")) return -1;
    return strtol(name, NULL, 10);
}

static int by_number(const void *a, const void *b) {
    long x = ((const entry *)a)->number, y = ((const entry *)b)->number;
    return (x > y) - (x < y);
}

void avatar_names_free(char **names, int count) {
    if (!names) return;
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

static void entries_free(entry *e, int n) {
    for (int i = 0; i < n; i++) free(e[i].name);
    free(e);
}

int avatar_list_frames(const char *dir, char ***names, int *count, ls_err *err) {
    DIR *d = opendir(dir);
    if (!d) return ls_fail(err, errno == ENOENT ? LS_ENOTFOUND : LS_EIO, "frames folder %s: %s", dir,
                           strerror(errno));
    entry *e = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        long num = frame_number(de->d_name);
        if (num < 0) continue;
        if (n == AVATAR_MAX_FRAMES) {
            rc = ls_fail(err, LS_EFORMAT, "%s: more than %d frames", dir, AVATAR_MAX_FRAMES);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            entry *p = realloc(e, sizeof *e * (size_t)cap);
            if (!p) {
                rc = ls_fail(err, LS_ENOMEM, "out of memory");
                break;
            }
            e = p;
        }
        e[n].number = num;
        if (!(e[n].name = strdup(de->d_name))) {
            rc = ls_fail(err, LS_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = ls_fail(err, LS_ENOTFOUND, "%s: no frames named <number>.jpg|.png", dir);
    if (rc == 0) qsort(e, (size_t)n, sizeof *e, by_number);
    /* Numbers must run on without gaps: a missing frame would silently shift every later box. */
    for (int i = 1; rc == 0 && i < n; i++) {
        if (e[i].number == e[i - 1].number)
            rc = ls_fail(err, LS_EFORMAT, "%s: %s and %s have the same number", dir, e[i - 1].name,
                         e[i].name);
        else if (e[i].number != e[i - 1].number + 1)
            rc = ls_fail(err, LS_EFORMAT, "%s: frame number %ld is missing (after %s)", dir,
                         e[i - 1].number + 1, e[i - 1].name);
    }
    char **out = rc == 0 ? malloc(sizeof *out * (size_t)n) : NULL;
    if (rc == 0 && !out) rc = ls_fail(err, LS_ENOMEM, "out of memory");
    if (rc != 0) {
        entries_free(e, n);
        return -1;
    }
    for (int i = 0; i < n; i++) out[i] = e[i].name; /* names move to the caller */
    free(e);
    *names = out;
    *count = n;
    return 0;
}
