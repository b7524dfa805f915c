# fuzz.cmake (tests) - fuzz_requests (fuzz/): arbitrary bytes through the request decoding and
# validation of both APIs under libFuzzer + ASan + UBSan, for LS_FUZZ_SECONDS (45 s). Only where
# LS_FUZZ is on (sanitizer builds by default, see cmake/fuzz.cmake).
if(LS_FUZZ)
  add_test(NAME fuzz_requests
    COMMAND ${CMAKE_SOURCE_DIR}/fuzz/run.sh ${CMAKE_BINARY_DIR}/fuzz/fuzz_requests ${CMAKE_SOURCE_DIR}/proto
            ${CMAKE_BINARY_DIR}/fuzz/run ${LS_FUZZ_SECONDS})
  set_tests_properties(fuzz_requests PROPERTIES TIMEOUT 180)
endif()
