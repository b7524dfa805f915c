# server.cmake (tests) - lipsyncd: config parsing in C, and the real server process driven by
# Python grpcio clients (Debian's python3-grpcio / python3-grpc-tools; stubs generated at test time).
ls_add_c_test(test_server_config test_server_config.c)
target_link_libraries(test_server_config PRIVATE lipsync_server)

add_test(NAME server_grpc
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/server_test.py
          $<TARGET_FILE:lipsyncd> ${CMAKE_SOURCE_DIR}/proto)
set_tests_properties(server_grpc PROPERTIES TIMEOUT 300 ENVIRONMENT "no_proxy=*;NO_PROXY=*")
# onnx.thread_affinity: which CPU each model thread gets (src/server/cpu_plan.h).
ls_add_c_test(test_server_cpu_plan test_server_cpu_plan.c)
target_link_libraries(test_server_cpu_plan PRIVATE lipsync_server)
# Which GPU a new avatar goes to (registry state built by hand; no GPU needed).
ls_add_c_test(test_registry_place test_registry_place.c)
target_link_libraries(test_registry_place PRIVATE lipsync_server)
