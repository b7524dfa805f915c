/* hugepages.h - transparent huge pages behind the large buffers ONNX Runtime allocates.
 *
 * ONNX Runtime's CPU arena takes its memory with malloc, which maps large blocks in 4 KiB pages.
 * Where the first touch of a page is slow (virtual machines), the UNet's first runs of each batch
 * size were dominated by page faults: 12-33 s instead of 1-2 s for 25 frames in lipsyncd. glibc
 * (2.35 and later) backs malloc's large mappings with transparent huge pages when GLIBC_TUNABLES
 * holds glibc.malloc.hugetlb=1, but it reads tunables only when a process starts. So
 * ls_hugepages_reexec() re-executes the program once, same pid and arguments, with that entry
 * added, unless it is already there, LIPSYNC_NO_HUGEPAGES is set, or the system has THP off
 * ("[never]"). It returns only when it did not re-execute (including when exec failed: the program
 * then runs as it would have). Call it first thing in main. */
#ifndef LS_HUGEPAGES_H
#define LS_HUGEPAGES_H

void ls_hugepages_reexec(char **argv);

#endif
