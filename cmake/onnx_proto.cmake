# onnx_proto.cmake - C code for ONNX's own protobuf schema (onnx.proto, from Debian's python3-onnx),
# generated with protoc-c into the build tree, as the static library lipsync_onnx_proto that
# lipsync_core links: src/infer/onnx_wrap.c reads and writes ModelProto with it.
# Also included by fuzz/CMakeLists.txt (its own project, which compiles every core source itself):
# there only LS_ONNX_PROTO_SOURCES / LS_ONNX_PROTO_GEN_DIR are used.
find_program(LS_PROTOC_C protoc-c)
if(NOT LS_PROTOC_C)
  message(FATAL_ERROR "protoc-c not found: install protobuf-c-compiler (scripts/install-deps.sh)")
endif()

# Debian's python3-onnx ships the schema; look there first, then ask the Python the build uses
# where its onnx package lives (a pip install), then glob the usual package folders.
find_file(LS_ONNX_PROTO onnx.proto PATHS /usr/lib/python3/dist-packages/onnx NO_DEFAULT_PATH
  DOC "ONNX's onnx.proto schema")
if(NOT LS_ONNX_PROTO AND Python3_EXECUTABLE)
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "import os, onnx; print(os.path.dirname(onnx.__file__))"
    OUTPUT_VARIABLE ls_onnx_pkg OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(ls_onnx_pkg AND EXISTS ${ls_onnx_pkg}/onnx.proto)
    set(LS_ONNX_PROTO ${ls_onnx_pkg}/onnx.proto CACHE FILEPATH "ONNX's onnx.proto schema" FORCE)
  endif()
endif()
if(NOT LS_ONNX_PROTO)
  file(GLOB ls_onnx_proto_candidates
    /usr/lib/python3*/dist-packages/onnx/onnx.proto /usr/lib/python3*/site-packages/onnx/onnx.proto
    /usr/local/lib/python3*/dist-packages/onnx/onnx.proto /usr/local/lib/python3*/site-packages/onnx/onnx.proto)
  if(ls_onnx_proto_candidates)
    list(GET ls_onnx_proto_candidates 0 ls_first)
    set(LS_ONNX_PROTO ${ls_first} CACHE FILEPATH "ONNX's onnx.proto schema" FORCE)
  endif()
endif()
if(NOT LS_ONNX_PROTO OR NOT EXISTS "${LS_ONNX_PROTO}")
  message(FATAL_ERROR "onnx.proto (ONNX's protobuf schema, needed for src/infer/onnx_wrap.c) not found "
    "in /usr/lib/python3/dist-packages/onnx, the onnx package of ${Python3_EXECUTABLE} or other Python "
    "package folders (LS_ONNX_PROTO='${LS_ONNX_PROTO}'): install python3-onnx "
    "(scripts/install-deps.sh) or pass -DLS_ONNX_PROTO=/path/to/onnx.proto")
endif()

get_filename_component(ls_onnx_proto_dir ${LS_ONNX_PROTO} DIRECTORY)
set(LS_ONNX_PROTO_GEN_DIR ${CMAKE_BINARY_DIR}/onnx_proto)
set(ls_onnx_out ${LS_ONNX_PROTO_GEN_DIR}/onnx)  # sources include "onnx/onnx.pb-c.h"
set(LS_ONNX_PROTO_SOURCES ${ls_onnx_out}/onnx.pb-c.c)
add_custom_command(
  OUTPUT ${ls_onnx_out}/onnx.pb-c.c ${ls_onnx_out}/onnx.pb-c.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${ls_onnx_out}
  COMMAND ${LS_PROTOC_C} --proto_path=${ls_onnx_proto_dir} --c_out=${ls_onnx_out} ${LS_ONNX_PROTO}
  DEPENDS ${LS_ONNX_PROTO}
  COMMENT "protoc-c onnx.proto"
  VERBATIM)

if(TARGET lipsync_core)
  if(NOT TARGET PkgConfig::PROTOBUF_C)
    pkg_check_modules(PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)
  endif()
  # Generated code does not follow our warning flags.
  add_library(lipsync_onnx_proto STATIC ${LS_ONNX_PROTO_SOURCES})
  target_include_directories(lipsync_onnx_proto PUBLIC ${LS_ONNX_PROTO_GEN_DIR})
  target_compile_options(lipsync_onnx_proto PRIVATE -Wno-unused-parameter)
  target_link_libraries(lipsync_onnx_proto PUBLIC PkgConfig::PROTOBUF_C)
  target_link_libraries(lipsync_core PUBLIC lipsync_onnx_proto)
endif()
