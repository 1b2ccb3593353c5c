// libuniter_torch_commands.so: the LibTorch subcommands, loaded by the
// `uniter` binary only when one of them runs (see command_list.inc), and for
// `uniter --version`'s runtime line.
#include <algorithm>
#include <cstring>
#include <string>

#include "common/torch_runtime.h"
#include "tools/commands.h"

extern "C" __attribute__((visibility("default"))) int uniter_setup_torch_command(const char* cli_name,
                                                                                 CLI::App* app) {
#define UNITER_COMMAND(Name)
#define UNITER_TORCH_COMMAND(Name, name, help)      \
  if (std::strcmp(cli_name, name) == 0) {           \
    uniter::tools::Setup##Name##Command(*app);      \
    return 1;                                       \
  }
#include "tools/command_list.inc"
#undef UNITER_COMMAND
#undef UNITER_TORCH_COMMAND
  return 0;
}

// Writes FormatTorchRuntime() of the default configuration (the thread count
// commands use when --threads is not given) into buf, NUL-terminated.
extern "C" __attribute__((visibility("default"))) int uniter_torch_runtime(char* buf, int size) {
  if (size <= 0) return 0;
  uniter::ConfigureTorchThreads(0);
  const std::string s = uniter::FormatTorchRuntime(uniter::DescribeTorchRuntime());
  const size_t n = std::min(s.size(), static_cast<size_t>(size - 1));
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
  return static_cast<int>(n);
}
