# The CUDA kernels' library holds SASS (a cubin) for every architecture it was
# configured for, sm_80 (A100) among them, and PTX for the newest: what the
# driver needs to run them on that GPU without "no kernel image".
#   cmake -DCUOBJDUMP=<cuobjdump> -DLIB=<libuniter_extractor_cuda.a> -DARCHS="75-real|...|90-virtual" -P check_cubins.cmake
execute_process(COMMAND ${CUOBJDUMP} --list-elf ${LIB} OUTPUT_VARIABLE elf RESULT_VARIABLE rc1 ERROR_VARIABLE err)
execute_process(COMMAND ${CUOBJDUMP} --list-ptx ${LIB} OUTPUT_VARIABLE ptx RESULT_VARIABLE rc2 ERROR_VARIABLE err)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0)
  message(FATAL_ERROR "cuobjdump failed on ${LIB}: ${err}")
endif()
string(REPLACE "|" ";" ARCHS "${ARCHS}")
message("cuobjdump --list-elf:\n${elf}cuobjdump --list-ptx:\n${ptx}")
set(want_sass 80)  # the issue's proof: A100 has a kernel image
foreach(a ${ARCHS})
  if(a MATCHES "^([0-9]+)-real$")
    list(APPEND want_sass ${CMAKE_MATCH_1})
  elseif(a MATCHES "^([0-9]+)-virtual$")
    if(NOT ptx MATCHES "sm_${CMAKE_MATCH_1}\\.ptx")
      message(FATAL_ERROR "no PTX for compute_${CMAKE_MATCH_1} in ${LIB}")
    endif()
  endif()
endforeach()
list(REMOVE_DUPLICATES want_sass)
foreach(a ${want_sass})
  # Both kernels (nms.cu, roi_pool.cu) for each architecture.
  string(REGEX MATCHALL "sm_${a}\\.cubin" hits "${elf}")
  list(LENGTH hits n)
  if(n LESS 2)
    message(FATAL_ERROR "${LIB} has ${n} sm_${a} cubin(s), want one per kernel source (2)")
  endif()
endforeach()
message(STATUS "cubins for sm_${want_sass}; PTX present")
