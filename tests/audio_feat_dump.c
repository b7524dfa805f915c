/* audio_feat_dump.c - prints feat_frame_count and feat_mel_window_start for test_feat_formulas.py:
 * "n L" then "n k start" lines for mel lengths argv[1]..argv[2]. Not a test by itself. */
#include "audio/features.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    size_t lo = strtoul(argv[1], NULL, 10), hi = strtoul(argv[2], NULL, 10);
    for (size_t n = lo; n <= hi; n++) {
        size_t L = feat_frame_count(n);
        printf("%zu %zu\n", n, L);
        for (size_t k = 0; k < L; k++) printf("%zu %zu %zu\n", n, k, feat_mel_window_start(k, n));
    }
    return 0;
}
