# `cmake --install`: headers under include/uniter/<module>/, the static
# libraries, and the CMake package `uniter` (uniterConfig.cmake + version file
# + exported targets uniter::common, uniter::tokenizer, uniter::featdb,
# uniter::converters) so another project can
#   find_package(uniter 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE uniter::featdb)
# and `#include "featdb/txt_db.h"` as the modules do.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The modules exported to other projects: those without LibTorch.
set(UNITER_EXPORTED_MODULES common tokenizer featdb converters)
set(UNITER_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/uniter)
set(UNITER_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/uniter)

# Called by uniter_module for each module.
function(uniter_install_module name)
  if(NOT name IN_LIST UNITER_EXPORTED_MODULES)
    return()
  endif()
  set_target_properties(uniter_${name} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(uniter_${name} PUBLIC $<INSTALL_INTERFACE:${UNITER_INSTALL_INCLUDEDIR}>)
  install(TARGETS uniter_${name} EXPORT uniterTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${UNITER_SOURCE_ROOT}/${name}/ DESTINATION ${UNITER_INSTALL_INCLUDEDIR}/${name}
    FILES_MATCHING PATTERN "*.h" PATTERN "*.inc")
endfunction()

# Called once, after every module: the package files.
function(uniter_install_package)
  # Static libraries carry their private dependencies (LINK_ONLY) into the
  # export, uniter_warnings among them (compile options do not travel).
  install(TARGETS uniter_warnings EXPORT uniterTargets)
  install(EXPORT uniterTargets NAMESPACE uniter:: DESTINATION ${UNITER_INSTALL_CMAKEDIR})
  configure_package_config_file(${UNITER_SOURCE_ROOT}/cmake/uniterConfig.cmake.in
    ${CMAKE_BINARY_DIR}/uniterConfig.cmake INSTALL_DESTINATION ${UNITER_INSTALL_CMAKEDIR})
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/uniterConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${CMAKE_BINARY_DIR}/uniterConfig.cmake ${CMAKE_BINARY_DIR}/uniterConfigVersion.cmake
    DESTINATION ${UNITER_INSTALL_CMAKEDIR})
endfunction()
