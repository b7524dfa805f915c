# client.cmake (tests) - `lipsync client` against the real lipsyncd (health, auth, TLS, errors,
# admin commands) and against a scripted grpcio server (render/bench requests on the wire, MP4 out).
add_test(NAME client_grpc
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/client_test.py
          $<TARGET_FILE:lipsync> $<TARGET_FILE:lipsyncd> ${CMAKE_SOURCE_DIR}/proto)
set_tests_properties(client_grpc PROPERTIES TIMEOUT 240 ENVIRONMENT "no_proxy=*;NO_PROXY=*")
