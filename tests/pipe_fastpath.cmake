# Fast paths of the pipeline (prepared-crop cache, spliced JPEG output) against the reference paths,
# on the demo avatar.
ls_add_c_test(test_pipe_fastpath test_pipe_fastpath.c)
add_dependencies(test_pipe_fastpath models demo_avatar)
set_tests_properties(test_pipe_fastpath PROPERTIES TIMEOUT 300)
