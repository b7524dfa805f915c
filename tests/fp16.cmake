# The fp16 converter (tools/onnx_fp16.py): structure of the converted models, and their outputs
# against the float32 originals on real demo-avatar frames, run through src/infer by fp16_run.
add_executable(fp16_run fp16_run.c)
target_link_libraries(fp16_run PRIVATE lipsync_core)
add_test(NAME test_onnx_fp16
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_onnx_fp16.py
          $<TARGET_FILE:fp16_run> ${CMAKE_BINARY_DIR})
set_tests_properties(test_onnx_fp16 PROPERTIES TIMEOUT 120)
add_dependencies(fp16_run models_fp16)
