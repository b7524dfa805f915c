# Avatar packages and FFmpeg video in/out (src/avatar, src/media, lipsync avatar).
ls_add_c_test(test_avatar test_avatar.c)
ls_add_c_test(test_media test_media.c)
