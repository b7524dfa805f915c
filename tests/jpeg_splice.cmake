# Tests of the incremental JPEG encoder (src/image/jpeg_splice*).

ls_add_c_test(test_jpeg_splice test_jpeg_splice.c)

# Zero heap allocations per encode, counted by malloc/free defined in the test executable itself.
# (-Wl,--wrap=malloc would only see calls from statically linked objects, not libjpeg's own
# mallocs inside libjpeg.so, which are the ones that matter.) AddressSanitizer owns malloc, so the
# check is skipped in sanitizer builds.
if(NOT LS_SANITIZE)
  ls_add_c_test(test_jpeg_splice_alloc test_jpeg_splice_alloc.c)
  target_link_options(test_jpeg_splice_alloc PRIVATE -rdynamic)
endif()

# Benchmark (not a test): build/bench_jpeg_splice [frames]
add_executable(bench_jpeg_splice ${CMAKE_SOURCE_DIR}/bench/bench_jpeg_splice.c)
target_link_libraries(bench_jpeg_splice PRIVATE lipsync_core)
target_include_directories(bench_jpeg_splice PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_options(bench_jpeg_splice PRIVATE -O2)
