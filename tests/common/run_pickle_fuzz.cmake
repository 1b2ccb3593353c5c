# Builds tests/common/pickle_fuzz.cc with clang's libFuzzer (+ASan/UBSan)
# and fuzzes the safe pickle reader for SECONDS, seeded with the test pickles.
#   cmake -DCLANGXX=clang++ -DSRC=<repo> -DOUT=<binary> -DSEEDS=<dir> -DSECONDS=15 -P run_pickle_fuzz.cmake
if(NOT CLANGXX)
  # Strict mode (CI=true or UNITER_STRICT=1): a fuzzer that cannot run fails.
  if("$ENV{CI}" MATCHES "^(true|1)$" OR "$ENV{UNITER_STRICT}" STREQUAL "1")
    message(FATAL_ERROR "strict mode (CI=true): clang++ not found, cannot fuzz (apt-get install clang libclang-rt-14-dev)")
  endif()
  message("SKIP: clang++ not found (apt-get install clang libclang-rt-14-dev)")  # ctest: SKIP_REGULAR_EXPRESSION
  return()
endif()
execute_process(
  COMMAND ${CLANGXX} -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
          -I${SRC} ${SRC}/tests/common/pickle_fuzz.cc ${SRC}/common/pickle_reader.cc ${SRC}/common/error.cc ${SRC}/common/utf8.cc
          -o ${OUT}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the fuzz target failed (${rc})")
endif()
file(REMOVE_RECURSE ${SEEDS})
file(MAKE_DIRECTORY ${SEEDS})
find_program(PY3 NAMES python3)
if(PY3)
  execute_process(COMMAND ${PY3} ${SRC}/tests/common/make_pickles.py ${SEEDS}/fixtures)
  file(GLOB seeds ${SEEDS}/fixtures/*.pkl)
  foreach(s ${seeds})
    get_filename_component(n ${s} NAME)
    # Huge hostile seeds slow every iteration; keep the small ones.
    file(SIZE ${s} size)
    if(size LESS 20000)
      file(COPY ${s} DESTINATION ${SEEDS})
    endif()
  endforeach()
  file(REMOVE_RECURSE ${SEEDS}/fixtures)
endif()
execute_process(COMMAND ${OUT} -max_total_time=${SECONDS} -max_len=4096 -rss_limit_mb=1024 -timeout=10 ${SEEDS}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the fuzzer found a crash (${rc}); the input is in the working directory")
endif()
