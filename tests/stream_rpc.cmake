# stream_rpc.cmake (tests) - the Stream RPC end to end: lipsyncd on a free port with small avatars
# and the demo models, grpcio clients with stubs generated at test time (tests/stream_rpc_test.py).
add_test(NAME stream_rpc
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/stream_rpc_test.py
          $<TARGET_FILE:lipsyncd> ${CMAKE_SOURCE_DIR}/proto ${CMAKE_BINARY_DIR})
set_tests_properties(stream_rpc PROPERTIES TIMEOUT 300 ENVIRONMENT "no_proxy=*;NO_PROXY=*")
