// Declarations of every subcommand's setup function (see command_list.inc).
#pragma once

namespace CLI {
class App;
}

namespace uniter::tools {

#define UNITER_COMMAND(Name) void Setup##Name##Command(CLI::App& app);
#define UNITER_TORCH_COMMAND(Name) UNITER_COMMAND(Name)
#include "tools/command_list.inc"
#undef UNITER_COMMAND
#undef UNITER_TORCH_COMMAND

// Common flags of long-running commands.
struct GeneralOptions {
  bool quiet = false;   // --quiet: no progress output
  int threads = 0;      // --threads: 0 = all cores
};

}  // namespace uniter::tools
