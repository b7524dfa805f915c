# fuzz.cmake - builds fuzz/ (the libFuzzer target for lipsyncd's request decoding and validation)
# with clang as an ExternalProject, because gcc has no libFuzzer. On by default in sanitizer
# builds (-DLS_SANITIZE=ON, what `make test-sanitize` and CI use); tests/fuzz.cmake runs it.
option(LS_FUZZ "Build fuzz/fuzz_requests with clang and run it in the tests" ${LS_SANITIZE})
set(LS_FUZZ_SECONDS 45 CACHE STRING "how long the fuzz_requests test fuzzes")
if(LS_FUZZ)
  find_program(LS_CLANG clang)
  if(NOT LS_CLANG)
    message(FATAL_ERROR "LS_FUZZ needs clang (scripts/install-deps.sh installs it)")
  endif()
  include(ExternalProject)
  ExternalProject_Add(fuzz_requests_build
    SOURCE_DIR ${CMAKE_SOURCE_DIR}/fuzz
    BINARY_DIR ${CMAKE_BINARY_DIR}/fuzz
    CMAKE_ARGS -DCMAKE_C_COMPILER=${LS_CLANG} -DLS_ORT_DIR=${LS_ORT_DIR}
    INSTALL_COMMAND ""
    BUILD_ALWAYS 1)  # the sub-build is incremental; this makes it see edits to src/
endif()
