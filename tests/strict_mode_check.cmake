# Proves CI strict mode: one reference test, run with a Python that lacks its
# reference modules (python3 -S: no site-packages), must FAIL under CI=true
# and skip, saying why, without it.
#   cmake -DBIN=<gtest binary> -DFILTER=<test> -DWORK=<dir> -P strict_mode_check.cmake
find_program(PY3 NAMES python3 REQUIRED)
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/python "#!/bin/sh\nexec ${PY3} -S \"$@\"\n")
file(CHMOD ${WORK}/python PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)

function(run_case ci_setting out_rc out_text)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env --unset=CI --unset=UNITER_STRICT ${ci_setting}
            UNITER_PYTHON=${WORK}/python ${BIN} --gtest_filter=${FILTER}
    RESULT_VARIABLE rc OUTPUT_VARIABLE text ERROR_VARIABLE text)
  set(${out_rc} ${rc} PARENT_SCOPE)
  set(${out_text} "${text}" PARENT_SCOPE)
endfunction()

run_case("CI=true" rc text)
if(rc EQUAL 0 OR NOT text MATCHES "strict mode" OR NOT text MATCHES "FAILED")
  message(FATAL_ERROR "CI=true with a reference module missing did not fail ${FILTER} (rc ${rc}):\n${text}")
endif()
run_case("UNITER_STRICT=1" rc text)
if(rc EQUAL 0)
  message(FATAL_ERROR "UNITER_STRICT=1 did not fail ${FILTER} (rc ${rc}):\n${text}")
endif()
run_case("CI=false" rc text)
if(NOT rc EQUAL 0 OR NOT text MATCHES "SKIPPED" OR NOT text MATCHES "missing from")
  message(FATAL_ERROR "without CI, ${FILTER} did not skip with the reason (rc ${rc}):\n${text}")
endif()
message(STATUS "strict mode: fails under CI=true, skips with the reason otherwise")
