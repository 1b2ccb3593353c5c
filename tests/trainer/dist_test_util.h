// Launching `uniter` as 2 ranks of a c10d group on 127.0.0.1, as torchrun
// would (its env:// variables), for the multi-process CLI tests.
#pragma once

#include <string>

#include "tests/test_util.h"

namespace uniter::trainer::testing {

// `uniter ARGS` as ranks 0 and 1 of 2, outputs to `logs`.0 / `logs`.1; the
// result's out is "0 0\n" when both exit 0.
inline ::uniter::testing::CommandResult TwoRanks(const std::string& args, const std::string& logs) {
  using ::uniter::testing::Quote;
  const int port = ::uniter::testing::FreePorts(1);
  auto rank = [&](int r) {
    return "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
           " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
           Quote(::uniter::testing::UniterBinary()) + " " + args + " > " + Quote(logs + "." + std::to_string(r)) +
           " 2>&1 & ";
  };
  return ::uniter::testing::Run(rank(0) + "p0=$!; " + rank(1) + "p1=$!; wait $p0; r0=$?; wait $p1; echo $r0 $?");
}

}  // namespace uniter::trainer::testing
