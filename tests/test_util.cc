#include "tests/test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
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

int FreePorts(int count) {
  auto bind_to = [](int port) {  // the socket bound to `port` (0: any), or -1
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  };
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = bind_to(0);
    if (fd < 0) continue;
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    bool free = port + count - 1 <= 65535;
    for (int k = 1; k < count && free; ++k) {
      const int next = bind_to(port + k);
      free = next >= 0;
      if (next >= 0) close(next);
    }
    close(fd);
    if (free) return port;
  }
  return 29533;
}

}  // namespace uniter::testing
