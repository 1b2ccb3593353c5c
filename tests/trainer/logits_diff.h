// Two runs' --save-logits files compared by numpy (not our npy reader): what
// the mixed-precision inference tests check against a tolerance.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace uniter::trainer::testing {

// What numpy finds comparing two [N, C] float32 logit files.
struct LogitsDiff {
  int64_t rows = 0;
  double max_abs_diff = 0;  // max |a - b| (float64)
  double scale = 0;         // max |a|: the logits' scale the tolerance is relative to
  double argmax_agree = 0;  // fraction of rows with the same argmax
  bool identical = false;   // bit for bit
};

// Reads both files with numpy (not our npy reader).
inline LogitsDiff CompareLogits(const std::string& a, const std::string& b) {
  using ::uniter::testing::Quote;
  const auto r = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import sys, numpy as np\n"
            "a, b = np.load(sys.argv[1]), np.load(sys.argv[2])\n"
            "assert a.dtype == b.dtype == np.float32 and a.shape == b.shape and a.ndim == 2, (a.dtype, b.dtype, a.shape, b.shape)\n"
            "d = np.abs(a.astype(np.float64) - b.astype(np.float64)).max()\n"
            "print(a.shape[0], repr(float(d)), repr(float(np.abs(a).max())), "
            "repr(float((a.argmax(1) == b.argmax(1)).mean())), int(a.tobytes() == b.tobytes()))\n") +
      " " + Quote(a) + " " + Quote(b) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  LogitsDiff d;
  int identical = 0;
  std::istringstream(r.out) >> d.rows >> d.max_abs_diff >> d.scale >> d.argmax_agree >> identical;
  d.identical = identical == 1;
  return d;
}

}  // namespace uniter::trainer::testing
