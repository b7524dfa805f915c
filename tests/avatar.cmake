# Avatar packages and FFmpeg video in/out (src/avatar, src/media, lipsync avatar).
ls_add_c_test(test_avatar test_avatar.c)
ls_add_c_test(test_media test_media.c)

# Frames must decode to exactly the pixels OpenCV gives the reference (Debian's python3-opencv).
add_executable(avatar_dump avatar_dump.c)
target_link_libraries(avatar_dump PRIVATE lipsync_core)
add_test(NAME test_avatar_pixels
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_avatar_pixels.py $<TARGET_FILE:avatar_dump>)

# `lipsync avatar build` and `info` end to end, with their error exits.
add_test(NAME test_avatar_cli
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_avatar_cli.py $<TARGET_FILE:lipsync>)

# The demo avatar generated at build time (cmake/demo_avatar.cmake) is a valid package.
add_test(NAME test_demo_avatar
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_demo_avatar.py
                 $<TARGET_FILE:lipsync> ${CMAKE_BINARY_DIR})
