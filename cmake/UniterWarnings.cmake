# uniter_warnings: an interface target every uniter target links to.
add_library(uniter_warnings INTERFACE)
target_compile_options(uniter_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>)

# uniter_module(NAME <name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One CMake library per top-level module, with its alias uniter::<name>.
function(uniter_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(uniter_${M_NAME} STATIC ${M_SOURCES})
  add_library(uniter::${M_NAME} ALIAS uniter_${M_NAME})
  target_include_directories(uniter_${M_NAME} PUBLIC
    $<BUILD_INTERFACE:${UNITER_SOURCE_ROOT}> $<BUILD_INTERFACE:${CMAKE_BINARY_DIR}/gen>)
  target_link_libraries(uniter_${M_NAME} PUBLIC ${M_PUBLIC_DEPS} PRIVATE uniter_warnings ${M_PRIVATE_DEPS})
  uniter_install_module(${M_NAME})
endfunction()
