# ONNX Runtime loading, model validation, bindings, and the demo pair (needs the generated models).
ls_add_c_test(test_infer test_infer.c)
add_dependencies(test_infer models)
set_tests_properties(test_infer PROPERTIES TIMEOUT 120)
# Under LS_SANITIZE, ignore the allocations ONNX Runtime itself never frees (see the .supp file).
set_property(TEST test_infer APPEND PROPERTY ENVIRONMENT
  "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan_onnxruntime.supp")
