# Tests of the audio front end (src/audio, src/common/npy, `lipsync mel`).

ls_add_c_test(test_mel test_mel.c)
ls_add_c_test(test_features test_features.c)
ls_add_c_test(test_pcm test_pcm.c)
ls_add_c_test(test_pcm_stream test_pcm_stream.c)
ls_add_c_test(test_npy test_npy.c)

# Frame counts and window starts against the reference's Python formulas, over many lengths.
add_executable(audio_feat_dump audio_feat_dump.c)
target_link_libraries(audio_feat_dump PRIVATE lipsync_core)
add_test(NAME test_feat_formulas
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_feat_formulas.py
                 $<TARGET_FILE:audio_feat_dump>)

# `lipsync mel` end to end: golden audio as .npy and as a float WAV -> .npy compared to golden.
add_test(NAME test_cli_mel
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_mel.py
                 $<TARGET_FILE:lipsync> ${LS_GOLDEN_DIR})
