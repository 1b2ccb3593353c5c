#include "common/plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include "common/error.h"

namespace uniter {

std::vector<std::string> PluginCandidates(const PluginSpec& spec) {
  std::vector<std::string> c;
  if (const char* env = std::getenv(spec.env_var.c_str()); env && *env) c.emplace_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    c.push_back((exe.parent_path() / spec.file_name).string());
    c.push_back((exe.parent_path() / ".." / "lib" / "uniter" / spec.file_name).string());
  }
  if (!spec.build_path.empty()) c.push_back(spec.build_path);
  return c;
}

void* LoadPlugin(const PluginSpec& spec) {
  std::string tried;
  const int flags = spec.dlopen_flags ? spec.dlopen_flags : (RTLD_NOW | RTLD_LOCAL);
  for (const std::string& path : PluginCandidates(spec)) {
    if (!std::filesystem::exists(path)) {
      tried += " " + path + " (absent);";
      continue;
    }
    if (void* h = dlopen(path.c_str(), flags)) return h;
    tried += " " + path + " (" + dlerror() + ");";
  }
  if (!tried.empty()) tried.pop_back();
  throw Error("cannot load " + spec.what + " " + spec.file_name + " (set " + spec.env_var +
              " to its path); tried:" + tried);
}

void* PluginSymbol(void* handle, const char* name, const PluginSpec& spec) {
  void* p = dlsym(handle, name);
  if (!p) throw Error(spec.what + " " + spec.file_name + " lacks the symbol " + name);
  return p;
}

}  // namespace uniter
