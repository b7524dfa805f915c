# float16 versions of the generated UNets (tools/onnx_fp16.py): same I/O as the float32 originals
# (float32 `input`, `audio`, `output`), float16 weights and activations inside.
set(LS_FP16_MODELS_DIR ${CMAKE_BINARY_DIR}/models)  # where cmake/models.cmake writes the originals
set(LS_FP16_MODEL_FILES)
foreach(name unet328 demo_unet)
  set(src ${LS_FP16_MODELS_DIR}/${name}.onnx)
  set(dst ${LS_FP16_MODELS_DIR}/${name}_fp16.onnx)
  add_custom_command(
    OUTPUT ${dst}
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tools/onnx_fp16.py ${src} ${dst}
    DEPENDS ${src} ${CMAKE_SOURCE_DIR}/tools/onnx_fp16.py
    COMMENT "Converting ${name}.onnx to float16"
    VERBATIM)
  list(APPEND LS_FP16_MODEL_FILES ${dst})
endforeach()
add_custom_target(models_fp16 ALL DEPENDS ${LS_FP16_MODEL_FILES})
add_dependencies(models_fp16 models)
