# stream.cmake (tests) - live sessions (src/server/stream_*): identity with the offline render,
# flush/interrupt, silence gate, cross-session batching (UNet scheduler and encoder batcher), limits,
# pacing. Demo models keep it fast.
ls_add_c_test(test_stream_session test_stream_session.c)
target_link_libraries(test_stream_session PRIVATE lipsync_server)
add_dependencies(test_stream_session models)
set_tests_properties(test_stream_session PROPERTIES TIMEOUT 300)
ls_add_c_test(test_stream_encb test_stream_encb.c)
target_link_libraries(test_stream_encb PRIVATE lipsync_server)
add_dependencies(test_stream_encb models)
set_tests_properties(test_stream_encb PROPERTIES TIMEOUT 120)
