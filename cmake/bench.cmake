# The benchmarks (bench/*.c): not tests and not built by default. `make bench` builds them all in
# a Release tree with `cmake --build build-bench --target bench_all` and runs bench/run.sh.
#   bench_stages       every figure of bench/run.sh's table (per stage, UNet, end to end, allocations)
#   bench_audio        mel front end and PCM conversion in detail
#   bench_image        prep / paste / TurboJPEG on synthetic frames
#   bench_infer        encoder and UNet under several ONNX Runtime settings
#   bench_jpeg_splice  incremental JPEG against full-frame encoders on synthetic frames
#   bench_gpu          the UNet on CUDA per setting, and its accuracy (scripts/gpu-check.sh)
set(LS_BENCH_TARGETS bench_stages bench_audio bench_image bench_infer bench_jpeg_splice bench_gpu)
foreach(b ${LS_BENCH_TARGETS})
  add_executable(${b} EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/bench/${b}.c)
  target_link_libraries(${b} PRIVATE lipsync_core)
  # tests/ holds helpers some benches share with the tests (jpeg_splice_util.h).
  target_include_directories(${b} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/bench)
  set_target_properties(${b} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endforeach()
# bench_stages defines malloc & co. to count allocations; -rdynamic exports them to libraries
# opened with dlopen (ONNX Runtime), so their allocations are counted too.
target_link_options(bench_stages PRIVATE -rdynamic)
add_custom_target(bench_all DEPENDS ${LS_BENCH_TARGETS})
