# server_alloc.cmake (tests) - "a warm request allocates nothing in lipsyncd's own code":
# lipsyncd_alloccount is lipsyncd linked with --wrap for every allocating call (the C allocators
# and the library calls that create things), counted by src/server/testing/alloc_count.c and
# read through the test-only AllocCount method; server_alloc_test.py sends 100 warm Render and
# 100 InferBatchComposite requests and asserts the count did not move.
set(ls_alloc_wrapped malloc calloc realloc strdup strndup aligned_alloc realpath fopen opendir av_malloc
    av_frame_alloc av_packet_alloc avcodec_alloc_context3 swr_alloc_set_opts2 tjInitCompress
    tjInitDecompress tjAlloc fftwf_malloc spng_ctx_new cJSON_ParseWithLength)
list(TRANSFORM ls_alloc_wrapped PREPEND "LINKER:--wrap=")
add_executable(lipsyncd_alloccount ${CMAKE_SOURCE_DIR}/src/server/main.c
               ${CMAKE_SOURCE_DIR}/src/server/testing/alloc_count.c)
target_link_libraries(lipsyncd_alloccount PRIVATE lipsync_server)
target_link_options(lipsyncd_alloccount PRIVATE ${ls_alloc_wrapped})

add_test(NAME server_alloc
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/server_alloc_test.py
          $<TARGET_FILE:lipsyncd_alloccount> ${CMAKE_SOURCE_DIR}/proto ${CMAKE_BINARY_DIR})
set_tests_properties(server_alloc PROPERTIES TIMEOUT 240 ENVIRONMENT "no_proxy=*;NO_PROXY=*")
