// Helpers shared by the test binaries: where the shared data, the reference
// Python and the `uniter` binary are, and running a command for its output.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace uniter::testing {

// ../shared/data beside the checkout, or $UNITER_SHARED_DATA.
std::string SharedDataDir();
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

}  // namespace uniter::testing

// Skips (with the reason shown by ctest) when a reference is unavailable.
#define UNITER_REQUIRE_PYTHON_MODULE(mod)                                           \
  do {                                                                              \
    if (!::uniter::testing::PythonHas(mod))                                         \
      GTEST_SKIP() << "reference Python module '" << (mod) << "' missing from "    \
                   << ::uniter::testing::Python() << " (run scripts/install-deps.sh)"; \
  } while (0)
