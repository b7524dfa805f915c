# server.cmake (tests) - lipsyncd: config parsing in C, and the real server process driven by
# Python grpcio clients (Debian's python3-grpcio / python3-grpc-tools; stubs generated at test time).
ls_add_c_test(test_server_config test_server_config.c)
target_link_libraries(test_server_config PRIVATE lipsync_server)

# The grpc modules come from Debian's python3: prefer Python3_EXECUTABLE when it has them, else
# /usr/bin/python3 (a pyenv python found first on PATH usually lacks them).
set(LS_GRPC_PYTHON ${Python3_EXECUTABLE})
execute_process(COMMAND ${LS_GRPC_PYTHON} -c "import grpc, grpc_tools" RESULT_VARIABLE ls_py_rc
                OUTPUT_QUIET ERROR_QUIET)
if(NOT ls_py_rc EQUAL 0 AND EXISTS /usr/bin/python3)
  set(LS_GRPC_PYTHON /usr/bin/python3)
endif()
add_test(NAME server_grpc
  COMMAND ${LS_GRPC_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/server_test.py
          $<TARGET_FILE:lipsyncd> ${CMAKE_SOURCE_DIR}/proto)
set_tests_properties(server_grpc PROPERTIES TIMEOUT 300 ENVIRONMENT "no_proxy=*;NO_PROXY=*")
