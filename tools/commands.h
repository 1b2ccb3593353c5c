// Declarations of every subcommand's setup function (see command_list.inc).
#pragma once

namespace CLI {
class App;
}

namespace uniter::tools {

#define UNITER_COMMAND(Name) void Setup##Name##Command(CLI::App& app);
#define UNITER_TORCH_COMMAND(Name, cli_name, help) UNITER_COMMAND(Name)
#include "tools/command_list.inc"
#undef UNITER_COMMAND
#undef UNITER_TORCH_COMMAND

}  // namespace uniter::tools

// The LibTorch plugin's one entry point: registers the command named
// `cli_name` on `app`; returns 0 when it has no such command.
extern "C" int uniter_setup_torch_command(const char* cli_name, CLI::App* app);
