# dk_add_plugin(<target> SOURCES <file>... [OUTPUT_DIRECTORY <dir>])
#
# Builds one dkhost plugin: a MODULE library named <target>.so (no "lib"
# prefix) against the SDK headers only. Symbols are hidden by default, so the
# plugin exports exactly dk_plugin_entry; it links nothing of the host.
function(dk_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  if(TARGET dk_sdk)
    target_link_libraries(${target} PRIVATE dk_sdk)
  else()
    target_link_libraries(${target} PRIVATE dk::sdk)
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()
  # Undefined symbols are an error at link time, not at dlopen time.
  if(NOT DK_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()
