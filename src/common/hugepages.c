/* hugepages.c - re-execution with glibc's huge-page tunable (see hugepages.h). */
#include "common/hugepages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TUNABLE "glibc.malloc.hugetlb=1"

/* 0 when the kernel has transparent huge pages switched off (or says nothing about them). */
static int thp_available(void) {
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return 0;
    int ok = fgets(mode, sizeof mode, f) != NULL && !strstr(mode, "[never]");
    fclose(f);
    return ok;
}

void ls_hugepages_reexec(char **argv) {
    const char *old = getenv("GLIBC_TUNABLES");
    if (getenv("LIPSYNC_NO_HUGEPAGES") || (old && strstr(old, "glibc.malloc.hugetlb")) || !thp_available()) return;
    char value[1024];
    int n = snprintf(value, sizeof value, "%s%s%s", old ? old : "", old && *old ? ":" : "", TUNABLE);
    if (n < 0 || (size_t)n >= sizeof value || setenv("GLIBC_TUNABLES", value, 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on without huge pages, and do not leave the entry to children. */
    if (old) setenv("GLIBC_TUNABLES", old, 1);
    else unsetenv("GLIBC_TUNABLES");
}
