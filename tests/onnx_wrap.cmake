# The uint8-wrapped UNet (src/infer/onnx_wrap.*) against the float path, on the generated models
# and the demo avatar; and the uint8 paste-back (paste_u8_to_crop, paste_frame_u8) against the float one.
ls_add_c_test(test_onnx_wrap test_onnx_wrap.c)
add_dependencies(test_onnx_wrap models demo_avatar)
set_tests_properties(test_onnx_wrap PROPERTIES TIMEOUT 120)
ls_add_c_test(test_paste_u8 test_paste_u8.c)
