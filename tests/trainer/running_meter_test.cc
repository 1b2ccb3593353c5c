// RunningMeter against UNITER's utils/logger.py RunningMeter restated in
// Python: the same doubles after every value, NaN results dropped, 0 until
// the first value is taken.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "trainer/internal/running_meter.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;

TEST(RunningMeter, MatchesUnitersMeterBitForBitAndDropsNanResults) {
  // A NaN first value (not taken), ordinary losses, a NaN loss mid-run, an
  // inf loss (taken: inf is not NaN), then -inf (inf - inf: NaN, dropped).
  std::vector<std::string> values = {"nan", "2.5", "0.1", "nan", "1e-3", "3.14159"};
  for (int i = 0; i < 40; ++i) {
    char v[32];
    std::snprintf(v, sizeof(v), "%.17g", 4 + 3 * std::sin(i * 0.7));
    values.push_back(v);
  }
  for (const char* v : {"inf", "1", "-inf", "2"}) values.push_back(v);

  const std::string code =
      "import math, sys\n"
      "class RunningMeter:\n"  // utils/logger.py's, restated
      "    def __init__(self, val=None, smooth=0.99):\n"
      "        self._sm, self._val = smooth, val\n"
      "    def __call__(self, value):\n"
      "        val = value if self._val is None else value*(1-self._sm) + self._val*self._sm\n"
      "        if not math.isnan(val):\n"
      "            self._val = val\n"
      "m = RunningMeter()\n"
      "for a in sys.argv[1:]:\n"
      "    m(float(a))\n"
      "    print(repr(float(0 if m._val is None else m._val)), int(m._val is not None))\n";
  std::string cmd = Quote(::uniter::testing::Python()) + " -c " + Quote(code);
  for (const auto& v : values) cmd += " " + v;
  const auto r = ::uniter::testing::Run(cmd + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;

  RunningMeter m;
  std::istringstream want(r.out);
  for (const auto& v : values) {
    m.Add(std::strtod(v.c_str(), nullptr));
    std::string val;
    int set = -1;
    ASSERT_TRUE(want >> val >> set) << "after " << v << ": " << r.out;
    const double w = std::strtod(val.c_str(), nullptr);
    EXPECT_TRUE(m.val == w || (std::isinf(m.val) && std::isinf(w) && (m.val > 0) == (w > 0)))
        << "after " << v << ": ours " << m.val << ", UNITER's " << val;
    EXPECT_EQ(m.set, set == 1) << "after " << v;
  }
  EXPECT_TRUE(std::isinf(m.val)) << "inf taken, then -inf's NaN dropped";
}

}  // namespace
}  // namespace uniter::trainer
