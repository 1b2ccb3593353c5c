#include "tests/test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace fs = std::filesystem;

namespace uniter::testing {

namespace {
std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}
}  // namespace

std::string SharedDataDir() {
  return EnvOr("UNITER_TEST_DATA", EnvOr("UNITER_SHARED_DATA", UNITER_TEST_SHARED_DATA));
}

bool StrictMode() {
  const std::string ci = EnvOr("CI", "");
  return ci == "true" || ci == "1" || EnvOr("UNITER_STRICT", "0") == "1";
}
std::string Python() { return EnvOr("UNITER_PYTHON", UNITER_TEST_PYTHON); }
std::string UniterBinary() { return EnvOr("UNITER_BINARY", UNITER_TEST_BINARY); }
std::string SourceRoot() { return UNITER_TEST_SOURCE_ROOT; }

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  fs::path p = fs::path(base && *base ? base : "/tmp") /
               ("uniter-test-" + std::to_string(getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  static std::once_flag once;
  std::call_once(once, [] {
    std::atexit([] {
      const char* b = std::getenv("TMPDIR");
      std::error_code ec;
      if (!std::getenv("UNITER_KEEP_TEST_FILES"))
        fs::remove_all(fs::path(b && *b ? b : "/tmp") / ("uniter-test-" + std::to_string(getpid())), ec);
    });
  });
  return p.string();
}

CommandResult Run(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool PythonHas(const std::string& module) {
  static std::mutex mu;
  static std::map<std::string, bool> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(module);
  if (it != cache.end()) return it->second;
  const bool ok =
      Run(Quote(Python()) + " -c " + Quote("import " + module) + " >/dev/null 2>&1").exit_code == 0;
  cache[module] = ok;
  return ok;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

}  // namespace uniter::testing
