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
