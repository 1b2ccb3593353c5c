# Every third-party dependency, found once. Debian 12 packages (scripts/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(TBB REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc i18n data)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(simdjson CONFIG REQUIRED)
find_package(msgpack CONFIG REQUIRED)  # Debian names msgpack-cxx 4.x "msgpack"
find_package(ZLIB REQUIRED)
find_package(Protobuf REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip)

# LibTorch: Debian's libtorch-dev (CPU) by default; point Torch_DIR at a Python
# torch's share/cmake/Torch for the CUDA one.
set(UNITER_HAVE_TORCH OFF)
if(UNITER_WITH_TORCH)
  # TorchConfig finds Caffe2 with PATHS, which CMake searches after the system
  # prefixes: a Torch_DIR next to Debian's libtorch-dev would load Debian's
  # (CPU, 1.13) Caffe2 targets. Pin the one beside Torch_DIR.
  if(Torch_DIR AND NOT Caffe2_DIR AND EXISTS "${Torch_DIR}/../Caffe2/Caffe2Config.cmake")
    get_filename_component(Caffe2_DIR "${Torch_DIR}/../Caffe2" ABSOLUTE)
    set(Caffe2_DIR "${Caffe2_DIR}" CACHE PATH "Caffe2 config beside Torch_DIR")
  endif()
  find_package(Torch CONFIG QUIET)
  if(Torch_FOUND)
    set(UNITER_HAVE_TORCH ON)
    message(STATUS "uniter: LibTorch ${Torch_VERSION} at ${Torch_DIR}")
    # PyPI's torch ships protobuf 3.13 headers in its include dir, which comes
    # before the system's /usr/include; the protobuf we compile and link
    # against (caffe.proto) is the system's. Its headers go first.
    # PyPI's LibTorch carries its own libstdc++ parts and exports them
    # (std::filesystem, ...): found before the system libstdc++, they crash
    # (std::filesystem::remove_all jumps to 0). The system libstdc++ goes first
    # in every LibTorch binary's dynamic symbol search order.
    if(NOT Torch_DIR MATCHES "^/usr/")
      set_property(TARGET torch APPEND PROPERTY INTERFACE_LINK_OPTIONS
        "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
    endif()
    foreach(_dir ${TORCH_INCLUDE_DIRS})
      if(EXISTS "${_dir}/google/protobuf" AND NOT _dir STREQUAL Protobuf_INCLUDE_DIR)
        set(_shadow "${CMAKE_BINARY_DIR}/torch-protobuf-shadow")
        file(MAKE_DIRECTORY "${_shadow}")
        file(CREATE_LINK "${Protobuf_INCLUDE_DIR}/google" "${_shadow}/google" SYMBOLIC)
        get_target_property(_inc torch INTERFACE_INCLUDE_DIRECTORIES)
        if(NOT _inc)
          set(_inc "")
        endif()
        set_target_properties(torch PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_shadow};${_inc}")
        break()
      endif()
    endforeach()
  elseif(UNITER_WITH_CUDA STREQUAL "ON")
    # Asked for the CUDA build: a LibTorch that fails to load must not silently
    # turn it into a build without the extractor.
    find_package(Torch CONFIG REQUIRED)
  else()
    message(WARNING "uniter: UNITER_WITH_TORCH is ON but LibTorch was not found "
                    "(apt-get install libtorch-dev, or set Torch_DIR); extractor and trainer are skipped")
  endif()
endif()

set(UNITER_HAVE_CUDA OFF)
if(UNITER_HAVE_TORCH AND NOT UNITER_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  set(_torch_cuda OFF)
  if(TARGET torch_cuda OR CUDA_FOUND OR CAFFE2_USE_CUDA)
    set(_torch_cuda ON)
  endif()
  if(CMAKE_CUDA_COMPILER AND _torch_cuda)
    enable_language(CUDA)
    uniter_check_torch_cuda()
    set(UNITER_HAVE_CUDA ON)
  elseif(UNITER_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "uniter: UNITER_WITH_CUDA=ON needs nvcc and a CUDA-enabled LibTorch")
  endif()
endif()
message(STATUS "uniter: torch=${UNITER_HAVE_TORCH} cuda=${UNITER_HAVE_CUDA}")
