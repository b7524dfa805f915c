# The demo's spoken sentence, synthesised with espeak-ng at build time (22.05 kHz WAV, so the demo
# also exercises resampling to 16 kHz).
find_program(ESPEAK_NG espeak-ng REQUIRED)
set(LS_DEMO_SENTENCE "Hello! I am a lip sync demo. My mouth follows the words I speak, and it rests when I am silent.")
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/demo/sentence.wav
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/demo
  COMMAND ${ESPEAK_NG} -v en-us -s 150 -w ${CMAKE_BINARY_DIR}/demo/sentence.wav "${LS_DEMO_SENTENCE}"
  COMMENT "Synthesising the demo sentence with espeak-ng"
  VERBATIM)
add_custom_target(demo_speech ALL DEPENDS ${CMAKE_BINARY_DIR}/demo/sentence.wav)
