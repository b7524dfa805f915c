# server.cmake - builds lipsyncd: C code generated from proto/*.proto with protoc-c, the transport
# and configuration layer (src/server, library lipsync_server) and the lipsyncd executable.
# src/server is not in lipsync_core's glob, so it is built here.
find_program(LS_PROTOC_C protoc-c)
if(NOT LS_PROTOC_C)
  message(FATAL_ERROR "protoc-c not found: install protobuf-c-compiler (scripts/install-deps.sh)")
endif()
pkg_check_modules(GRPC REQUIRED IMPORTED_TARGET grpc gpr)
pkg_check_modules(PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)

set(LS_PROTO_DIR ${CMAKE_SOURCE_DIR}/proto)
set(LS_PROTO_GEN_DIR ${CMAKE_BINARY_DIR}/proto)
set(LS_PROTO_FILES monolithic lipsync/v1/lipsync grpc/health/v1/health)
set(LS_PROTO_SOURCES)
foreach(p ${LS_PROTO_FILES})
  set(gen_c ${LS_PROTO_GEN_DIR}/${p}.pb-c.c)
  set(gen_h ${LS_PROTO_GEN_DIR}/${p}.pb-c.h)
  add_custom_command(
    OUTPUT ${gen_c} ${gen_h}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${LS_PROTO_GEN_DIR}
    COMMAND ${LS_PROTOC_C} --proto_path=${LS_PROTO_DIR} --c_out=${LS_PROTO_GEN_DIR}
            ${LS_PROTO_DIR}/${p}.proto
    DEPENDS ${LS_PROTO_DIR}/${p}.proto
    COMMENT "protoc-c ${p}.proto"
    VERBATIM)
  list(APPEND LS_PROTO_SOURCES ${gen_c})
endforeach()

# Generated code does not follow our warning flags (unused parameters in protoc-c output).
add_library(lipsync_proto STATIC ${LS_PROTO_SOURCES})
target_include_directories(lipsync_proto PUBLIC ${LS_PROTO_GEN_DIR})
target_compile_options(lipsync_proto PRIVATE -Wno-unused-parameter)
target_link_libraries(lipsync_proto PUBLIC PkgConfig::PROTOBUF_C)

file(GLOB LS_SERVER_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/server/*.c)
list(REMOVE_ITEM LS_SERVER_SOURCES ${CMAKE_SOURCE_DIR}/src/server/main.c)
add_library(lipsync_server STATIC ${LS_SERVER_SOURCES})
target_include_directories(lipsync_server PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(lipsync_server PUBLIC lipsync_core lipsync_proto PkgConfig::GRPC
  PkgConfig::PROTOBUF_C Threads::Threads)

# Without a config, lipsyncd serves the build's demo avatar, and `models:` entries use the build's
# audio encoder.
target_compile_definitions(lipsync_server PRIVATE
  LS_DEFAULT_AVATARS_ROOT="${CMAKE_BINARY_DIR}/avatars"
  LS_DEFAULT_AUDIO_ENCODER="${CMAKE_BINARY_DIR}/models/ave_encoder.onnx")

add_executable(lipsyncd ${CMAKE_SOURCE_DIR}/src/server/main.c)
target_link_libraries(lipsyncd PRIVATE lipsync_server)

# `lipsync client` (src/cli/cmd_client*.c): the gRPC client library in src/client, linked into the
# `lipsync` executable that the top-level CMakeLists.txt defines from src/cli/*.c.
file(GLOB LS_CLIENT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/client/*.c)
add_library(lipsync_client STATIC ${LS_CLIENT_SOURCES})
target_include_directories(lipsync_client PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(lipsync_client PUBLIC lipsync_core lipsync_proto PkgConfig::GRPC
  PkgConfig::PROTOBUF_C Threads::Threads)
target_link_libraries(lipsync PRIVATE lipsync_client)
