// Helpers shared by the test binaries: where the shared data, the reference
// Python and the `uniter` binary are, and running a command for its output.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace uniter::testing {

// The real data sets: $UNITER_TEST_DATA, else the CMake variable
// UNITER_TEST_DATA (default ../shared/data beside the checkout).
std::string SharedDataDir();
// True when a missing reference must fail the test instead of skipping it:
// CI=true (as CI services set it) or UNITER_STRICT=1.
bool StrictMode();
// The venv Python with the reference packages (scripts/install-deps.sh).
std::string Python();
// The built `uniter` binary.
std::string UniterBinary();
// The repository root.
std::string SourceRoot();

// A fresh empty directory under the test temp dir, removed at exit.
std::string TempDir(const std::string& name);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout (stderr goes to the test log unless redirected)
};
// Runs `cmd` with /bin/sh, capturing stdout.
CommandResult Run(const std::string& cmd);

// True when `python -c "import <module>"` works.
bool PythonHas(const std::string& module);

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);
// Shell-quotes one argument.
std::string Quote(const std::string& s);

// A port on 127.0.0.1 the kernel just handed out (and took back) with the
// next `count - 1` ports free as well (torchrun's agent, our stores), for
// the multi-process tests; 29533 when 50 tries found none.
int FreePorts(int count = 1);

}  // namespace uniter::testing

// Strict-mode skip for a check that cannot run because a reference is missing
// (a Python module, a real data set, protoc, spm tools, ...). Outside CI it
// skips with the reason; under CI=true / UNITER_STRICT=1 it fails with it, so
// CI cannot go green without checking. Only `gpu` tests skip in CI, with plain
// GTEST_SKIP(). Use where GTEST_SKIP() may be used (a void function):
//   UNITER_REQUIRE_REFERENCE(fs::exists(p)) << p << " is missing";
#define UNITER_REQUIRE_REFERENCE(cond)                                                     \
  GTEST_AMBIGUOUS_ELSE_BLOCKER_                                                            \
  if (cond) {                                                                              \
  } else                                                                                   \
    return GTEST_MESSAGE_(::uniter::testing::StrictMode()                                  \
                              ? "strict mode (CI=true or UNITER_STRICT=1): a reference is " \
                                "missing, the check cannot run"                            \
                              : "",                                                        \
                          ::uniter::testing::StrictMode()                                  \
                              ? ::testing::TestPartResult::kFatalFailure                   \
                              : ::testing::TestPartResult::kSkip)

// The same with the reason as an argument.
#define UNITER_SKIP_UNLESS_REFERENCE(cond, reason) UNITER_REQUIRE_REFERENCE(cond) << reason

// A reference Python module (in the venv of scripts/install-deps.sh).
#define UNITER_REQUIRE_PYTHON_MODULE(mod)                                                   \
  UNITER_REQUIRE_REFERENCE(::uniter::testing::PythonHas(mod))                               \
      << "reference Python module '" << (mod) << "' missing from " << ::uniter::testing::Python() \
      << " (run scripts/install-deps.sh)"
