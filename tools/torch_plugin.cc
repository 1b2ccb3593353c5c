// libuniter_torch_commands.so: the LibTorch subcommands, loaded by the
// `uniter` binary only when one of them runs (see command_list.inc).
#include <cstring>

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
