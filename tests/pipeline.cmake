# End-to-end tests of the pipeline (src/pipeline) and `lipsync render`.

add_test(NAME test_render_cli
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_render_cli.py
                 $<TARGET_FILE:lipsync> ${CMAKE_BINARY_DIR})
set_tests_properties(test_render_cli PROPERTIES TIMEOUT 600)

ls_add_c_test(test_pipeline test_pipeline.c)
target_link_options(test_pipeline PRIVATE -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc)
