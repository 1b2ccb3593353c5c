# `cmake --install` into a temporary prefix, then a separate project finds the
# package, links uniter::featdb and reads a txt_db written by UNITER's own
# way (Python lmdb + msgpack + lz4: tests/featdb/uniter_ref.py); its output
# must list the same keys and input_ids lengths as Python's.
#   cmake -DBUILD=<tree> -DSRC=<repo> -DWORK=<dir> -DPYTHON=<venv python> -DGENERATOR=Ninja -P check_install.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

set(strict OFF)
if("$ENV{CI}" MATCHES "^(true|1)$" OR "$ENV{UNITER_STRICT}" STREQUAL "1")
  set(strict ON)
endif()
execute_process(COMMAND ${PYTHON} -c "import lmdb, msgpack, lz4.frame" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  if(strict)
    message(FATAL_ERROR "strict mode (CI=true): ${PYTHON} lacks lmdb/msgpack/lz4, the reference txt_db writer")
  endif()
  message("SKIP: ${PYTHON} lacks lmdb/msgpack/lz4 (run scripts/install-deps.sh)")
  return()
endif()

file(REMOVE_RECURSE ${WORK})
run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/prefix)
foreach(f include/uniter/featdb/txt_db.h include/uniter/common/error.h lib/cmake/uniter/uniterConfig.cmake
          lib/cmake/uniter/uniterConfigVersion.cmake lib/cmake/uniter/uniterTargets.cmake)
  if(NOT EXISTS ${WORK}/prefix/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()

run(${CMAKE_COMMAND} -S ${SRC}/tests/install/consumer -B ${WORK}/consumer -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK}/prefix)
run(${CMAKE_COMMAND} --build ${WORK}/consumer)

run(${PYTHON} ${SRC}/tests/featdb/uniter_ref.py txt_write ${WORK}/txt_db)
file(WRITE ${WORK}/written.json "${out}")
run(${PYTHON} -c "import json, sys
ex = json.load(open(sys.argv[1]))
n = lambda v: len(v['map'][[k for k, _ in v['map']].index('input_ids')][1])
print(len(ex))
for k in sorted(ex, key=lambda k: k.encode()):
    print(k, n(ex[k]))" ${WORK}/written.json)
set(want "${out}")
run(${WORK}/consumer/read_txt_db ${WORK}/txt_db)
if(NOT out STREQUAL want)
  message(FATAL_ERROR "the consumer read\n${out}\nPython wrote\n${want}")
endif()
string(REGEX MATCH "^[0-9]+" n "${out}")
message(STATUS "installed package found, linked and read ${n} records as Python wrote them")
