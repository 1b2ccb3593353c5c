# CUDA helpers: the GPU architectures the kernels build for, and the check
# that nvcc and the CUDA LibTorch are of one CUDA major version.

# SASS for every architecture UNITER users run (V100 70, T4 75, A100 80,
# RTX 30xx/A10 86, RTX 40xx/L4 89, H100 90) plus PTX of the newest, which the
# driver compiles for anything newer.
set(UNITER_CUDA_ARCHITECTURES "70;75;80;86;89;90" CACHE STRING
  "GPU architectures of the CUDA kernels (SASS each, PTX for the newest); those this nvcc cannot build are dropped with a note")

# uniter_cuda_architectures(<out>): UNITER_CUDA_ARCHITECTURES as CMake's
# CUDA_ARCHITECTURES ("75-real;...;90-real;90-virtual"), less what the nvcc
# in CMAKE_CUDA_COMPILER cannot target (CUDA 13 dropped Volta, sm_70).
function(uniter_cuda_architectures out)
  execute_process(COMMAND ${CMAKE_CUDA_COMPILER} --list-gpu-arch
    OUTPUT_VARIABLE listed RESULT_VARIABLE rc ERROR_QUIET)
  set(kept "")
  set(dropped "")
  foreach(a ${UNITER_CUDA_ARCHITECTURES})
    if(rc EQUAL 0 AND NOT listed MATCHES "compute_${a}([^0-9]|$)")
      list(APPEND dropped sm_${a})
    else()
      list(APPEND kept ${a})
    endif()
  endforeach()
  if(dropped)
    message(STATUS "uniter: nvcc ${CMAKE_CUDA_COMPILER_VERSION} cannot build ${dropped}: left out "
                   "(an older CUDA toolkit builds them)")
  endif()
  if(NOT kept)
    message(FATAL_ERROR "uniter: nvcc ${CMAKE_CUDA_COMPILER_VERSION} builds none of UNITER_CUDA_ARCHITECTURES=${UNITER_CUDA_ARCHITECTURES}")
  endif()
  list(SORT kept COMPARE NATURAL)
  list(GET kept -1 newest)
  list(TRANSFORM kept APPEND "-real")
  list(APPEND kept ${newest}-virtual)
  set(${out} "${kept}" PARENT_SCOPE)
endfunction()

# The CUDA version a LibTorch was built with, from the files beside its CMake
# config: torch/version.py of a Python torch (cuda = '13.0') or build-version
# of a libtorch archive (2.11.0+cu130). Empty when neither says.
function(uniter_torch_cuda_version out)
  get_filename_component(root "${Torch_DIR}/../../.." ABSOLUTE)
  set(v "")
  if(EXISTS "${root}/version.py")
    file(STRINGS "${root}/version.py" line REGEX "^cuda")
    if(line MATCHES "'([0-9]+\\.[0-9]+)")
      set(v ${CMAKE_MATCH_1})
    endif()
  elseif(EXISTS "${root}/build-version")
    file(READ "${root}/build-version" line)
    if(line MATCHES "\\+cu([0-9]+)([0-9])")
      set(v ${CMAKE_MATCH_1}.${CMAKE_MATCH_2})
    endif()
  endif()
  set(${out} "${v}" PARENT_SCOPE)
endfunction()

# Kernels built by one nvcc run on the CUDA runtime LibTorch loads: a major
# version apart, they do not link or load (libcudart.so.12 vs .13).
function(uniter_check_torch_cuda)
  set(UNITER_TORCH_CUDA_VERSION "" CACHE STRING "CUDA version of the LibTorch (empty: read from beside Torch_DIR)")
  set(torch_cuda "${UNITER_TORCH_CUDA_VERSION}")
  if(NOT torch_cuda)
    uniter_torch_cuda_version(torch_cuda)
  endif()
  if(NOT torch_cuda)
    message(WARNING "uniter: cannot tell which CUDA the LibTorch at ${Torch_DIR} was built with "
                    "(no version.py or build-version beside it): nvcc ${CMAKE_CUDA_COMPILER_VERSION} unchecked; "
                    "set UNITER_TORCH_CUDA_VERSION to check")
    return()
  endif()
  string(REGEX MATCH "^[0-9]+" torch_major "${torch_cuda}")
  string(REGEX MATCH "^[0-9]+" nvcc_major "${CMAKE_CUDA_COMPILER_VERSION}")
  if(NOT torch_major STREQUAL nvcc_major)
    message(FATAL_ERROR "uniter: nvcc ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}) is CUDA ${nvcc_major}, "
      "but the LibTorch at ${Torch_DIR} was built with CUDA ${torch_cuda}: the kernels would need another CUDA "
      "runtime than LibTorch's. Use a CUDA ${torch_major}.x nvcc (-DCMAKE_CUDA_COMPILER=...) or a torch built "
      "for CUDA ${nvcc_major} (pip install torch --index-url https://download.pytorch.org/whl/cu${nvcc_major}X).")
  endif()
  message(STATUS "uniter: nvcc ${CMAKE_CUDA_COMPILER_VERSION} and LibTorch's CUDA ${torch_cuda} agree")
endfunction()
