# The built-in demo avatar (build/avatars/demo): NASA's public-domain astronaut portrait from Debian's
# python3-skimage .deb (downloaded once into build/downloads, never installed), animated by
# tools/gen_demo_avatar.py. Its manifest names the demo models in build/models (made elsewhere).
set(LS_DEMO_AVATAR_DIR ${CMAKE_BINARY_DIR}/avatars/demo)
set(LS_DOWNLOAD_DIR ${CMAKE_BINARY_DIR}/downloads)
add_custom_command(
  OUTPUT ${LS_DEMO_AVATAR_DIR}/manifest.json
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tools/gen_demo_avatar.py
          --out ${LS_DEMO_AVATAR_DIR} --cache ${LS_DOWNLOAD_DIR}
  DEPENDS ${CMAKE_SOURCE_DIR}/tools/gen_demo_avatar.py
  COMMENT "Generating the demo avatar (250 frames, 1280x720)"
  VERBATIM)
add_custom_target(demo_avatar ALL DEPENDS ${LS_DEMO_AVATAR_DIR}/manifest.json)
