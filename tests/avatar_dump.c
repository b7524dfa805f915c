/* avatar_dump.c - test helper: loads an avatar package and writes its frames as raw BGR24 so the
 * Python tests can compare them with what OpenCV decodes. Prints "width height frames". */
#include <stdio.h>

#include "avatar/avatar.h"
#include "media/video_in.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: avatar_dump AVATAR_DIR OUT.raw\n");
        return 2;
    }
    media_quiet_ffmpeg_logs();
    ls_err err = {0};
    avatar *a = avatar_load(argv[1], &err);
    if (!a) {
        fprintf(stderr, "avatar_dump: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[2], "wb");
    size_t n = (size_t)a->frame_count * a->height * a->width * 3;
    int ok = f && fwrite(a->frames, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    if (ok) printf("%d %d %d\n", a->width, a->height, a->frame_count);
    else fprintf(stderr, "avatar_dump: cannot write %s\n", argv[2]);
    avatar_free(a);
    return ok ? 0 : 1;
}
