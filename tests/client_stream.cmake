# client_stream.cmake (tests) - `lipsync client stream` against lipsyncd with a small avatar and the
# demo models (burst identity with Render, MP4 frame count, realtime report, NOT_FOUND), and
# lipsyncd's Stream under SIGTERM (tests/client_stream_test.py).
add_test(NAME client_stream
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/client_stream_test.py
          $<TARGET_FILE:lipsync> $<TARGET_FILE:lipsyncd> ${CMAKE_SOURCE_DIR}/proto ${CMAKE_BINARY_DIR})
set_tests_properties(client_stream PROPERTIES TIMEOUT 180 ENVIRONMENT "no_proxy=*;NO_PROXY=*")
