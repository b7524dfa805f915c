# Tests of src/image: the visual path (resize, prep, paste, JPEG, image files).
ls_add_c_test(test_image test_image.c)

# image_tool runs resize/prep/paste on .npy files; the Python test compares its outputs with
# cv2/numpy running the reference code, with expected images generated at test time.
add_executable(image_tool image_tool.c)
target_link_libraries(image_tool PRIVATE lipsync_core)
add_test(NAME test_image_vs_opencv
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_image_vs_opencv.py
          $<TARGET_FILE:image_tool>)
set_tests_properties(test_image_vs_opencv PROPERTIES ENVIRONMENT "LS_GOLDEN_DIR=${LS_GOLDEN_DIR}")
