# ONNX Runtime loading, model validation, bindings, and the demo pair (needs the generated models).
ls_add_c_test(test_infer test_infer.c)
add_dependencies(test_infer models)
set_tests_properties(test_infer PROPERTIES TIMEOUT 120)
# Execution providers: CUDA missing here (clear error), CUDA present elsewhere (agrees with the CPU).
ls_add_c_test(test_infer_ep test_infer_ep.c)
add_dependencies(test_infer_ep models)
# Thread affinity: CPU ranges, ORT's affinity string, a session whose pool is pinned (demo UNet).
ls_add_c_test(test_ort_affinity test_ort_affinity.c)
add_dependencies(test_ort_affinity models)
# The batch-size sweep (lipsync tune) on the demo UNet: figures per size, the best, list parsing.
ls_add_c_test(test_ort_tune test_ort_tune.c)
add_dependencies(test_ort_tune models)
# The binding's device-tensor path (GPU copies, IoBinding) run against the CPU provider's EP device.
ls_add_c_test(test_ort_device test_ort_device.c)
add_dependencies(test_ort_device models)
