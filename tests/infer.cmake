# ONNX Runtime loading, model validation, bindings, and the demo pair (needs the generated models).
ls_add_c_test(test_infer test_infer.c)
add_dependencies(test_infer models)
set_tests_properties(test_infer PROPERTIES TIMEOUT 120)
# Execution providers: CUDA missing here (clear error), CUDA present elsewhere (agrees with the CPU).
ls_add_c_test(test_infer_ep test_infer_ep.c)
add_dependencies(test_infer_ep models)
