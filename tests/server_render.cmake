# server_render.cmake (tests) - lipsyncd wired to the pipeline: every RPC of both APIs against the
# real server process (grpcio clients, stubs generated at test time), outputs compared with
# `lipsync render`, error paths, concurrency, registry (load/unload/eviction/budget), cancel,
# deadline and SIGTERM. Uses small generated avatars and the build's demo avatar and models.
add_test(NAME server_render
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/server_render_test.py
          $<TARGET_FILE:lipsyncd> $<TARGET_FILE:lipsync> ${CMAKE_SOURCE_DIR}/proto ${CMAKE_BINARY_DIR})
set_tests_properties(server_render PROPERTIES TIMEOUT 300 ENVIRONMENT "no_proxy=*;NO_PROXY=*")
