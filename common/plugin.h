// Finding and loading uniter's own shared objects at run time (the LibTorch
// commands plugin, the SentencePiece shim). They are looked for in order:
// $<env_var>, beside the executable, <exe dir>/../lib/uniter/, then the path
// the build put them at.
#pragma once

#include <string>
#include <vector>

namespace uniter {

struct PluginSpec {
  std::string file_name;   // e.g. "libuniter_torch_commands.so"
  std::string env_var;     // overrides the search, e.g. "UNITER_TORCH_PLUGIN"
  std::string build_path;  // where the build tree has it
  std::string what;        // for messages, e.g. "the LibTorch commands plugin"
  int dlopen_flags = 0;    // 0: RTLD_NOW | RTLD_LOCAL
};

// The candidate paths, in search order.
std::vector<std::string> PluginCandidates(const PluginSpec& spec);

// dlopen()s the first candidate that exists. Throws uniter::Error naming
// every path tried and dlerror() when none loads. Never unloads.
void* LoadPlugin(const PluginSpec& spec);

// dlsym() that throws uniter::Error when the symbol is missing.
void* PluginSymbol(void* handle, const char* name, const PluginSpec& spec);

}  // namespace uniter
