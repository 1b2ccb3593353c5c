// The `uniter` binary: registers the subcommands and is the only place that
// maps errors to exit codes and one-line messages.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>

#include "common/error.h"
#include "common/plugin.h"
#include "common/version.h"
#include "tools/commands.h"

namespace {

#ifdef UNITER_HAVE_TORCH
const uniter::PluginSpec& TorchPluginSpec() {
  static const uniter::PluginSpec spec{"libuniter_torch_commands.so", "UNITER_TORCH_PLUGIN",
                                       UNITER_TORCH_PLUGIN_BUILD_PATH, "the LibTorch commands plugin"};
  return spec;
}

// The BLAS and thread count LibTorch runs with, from the plugin: only
// --version pays for loading LibTorch, other commands start without it.
std::string TorchRuntimeText() {
  try {
    void* handle = uniter::LoadPlugin(TorchPluginSpec());
    using DescribeFn = int (*)(char*, int);
    auto describe =
        reinterpret_cast<DescribeFn>(uniter::PluginSymbol(handle, "uniter_torch_runtime", TorchPluginSpec()));
    char buf[1024] = {};
    describe(buf, sizeof buf);
    return buf;
  } catch (const std::exception& e) {
    return std::string("unknown (") + e.what() + ")";
  }
}
#endif

std::string VersionText() {
  std::string v = std::string("uniter ") + UNITER_VERSION;
  if (*UNITER_GIT_DESCRIBE) v += std::string(" (") + UNITER_GIT_DESCRIBE + ")";
#ifdef UNITER_HAVE_TORCH
  v += "\nlibtorch: yes";
  v += "\nlibtorch runtime: " + TorchRuntimeText();
#else
  v += "\nlibtorch: no";
#endif
#ifdef UNITER_HAVE_CUDA
  v += "\ncuda: yes";
#else
  v += "\ncuda: no";
#endif
  return v;
}

#ifdef UNITER_HAVE_TORCH
struct TorchCommand {
  const char* name;
  const char* help;
};
constexpr TorchCommand kTorchCommands[] = {
#define UNITER_COMMAND(Name)
#define UNITER_TORCH_COMMAND(Name, name, help) {name, help},
#include "tools/command_list.inc"
#undef UNITER_COMMAND
#undef UNITER_TORCH_COMMAND
};

// Registers the LibTorch command `name` from the plugin (loaded once).
void SetupTorchCommand(const char* name, CLI::App& app) {
  const uniter::PluginSpec& spec = TorchPluginSpec();
  using SetupFn = int (*)(const char*, CLI::App*);
  void* handle = uniter::LoadPlugin(spec);
  auto setup = reinterpret_cast<SetupFn>(uniter::PluginSymbol(handle, "uniter_setup_torch_command", spec));
  if (!setup(name, &app)) throw uniter::Error(std::string("the LibTorch plugin has no command '") + name + "'");
}
#endif

bool HasSubcommand(CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->check_name(name)) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "uniter: UNITER data toolkit - tokenize, build txt_db/img_db, extract features, train.\n"
      "Run `uniter <command> --help` for a command's options."};
  app.set_version_flag("--version", VersionText);
  app.require_subcommand(1);
  app.fallthrough();

#define UNITER_COMMAND(Name) uniter::tools::Setup##Name##Command(app);
#define UNITER_TORCH_COMMAND(Name, name, help)
#include "tools/command_list.inc"
#undef UNITER_COMMAND
#undef UNITER_TORCH_COMMAND

  try {
#ifdef UNITER_HAVE_TORCH
    // A LibTorch command is registered from the plugin only when it runs; for
    // --help it is listed with its one-line help.
    for (const TorchCommand& c : kTorchCommands) {
      if (argc > 1 && std::strcmp(argv[1], c.name) == 0) SetupTorchCommand(c.name, app);
      else app.add_subcommand(c.name, c.help);
    }
#endif
    // CLI11 would call an unknown first word a missing subcommand; say what it is.
    if (argc > 1 && argv[1][0] != '-' && !HasSubcommand(app, argv[1])) {
      throw uniter::UsageError(std::string("unknown command '") + argv[1] +
                               "' (see `uniter --help`)");
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here too, with exit code 0.
    if (e.get_exit_code() == 0) return app.exit(e);
    // Name the deepest subcommand parsed: `uniter convert vqa --help`.
    std::string cmd = "uniter";
    for (const CLI::App* a = &app; !a->get_subcommands().empty();) {
      a = a->get_subcommands().back();
      cmd += " " + a->get_name();
    }
    std::fprintf(stderr, "uniter: error: %s (see `%s --help`)\n", e.what(), cmd.c_str());
    return 2;
  } catch (const uniter::UsageError& e) {
    std::fprintf(stderr, "uniter: error: %s\n", e.what());
    return 2;
  } catch (const uniter::Error& e) {
    std::fprintf(stderr, "uniter: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "uniter: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uniter: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
