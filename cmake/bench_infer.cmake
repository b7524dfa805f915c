# bench/bench_infer.c: encoder/UNet latency for several ONNX Runtime settings (not a test).
# Run: build/bench_infer --models build/models [--repeats N]
add_executable(bench_infer ${CMAKE_SOURCE_DIR}/bench/bench_infer.c)
target_link_libraries(bench_infer PRIVATE lipsync_core)
