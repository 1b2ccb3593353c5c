// Small helpers the benchmark programs share.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace uniter::bench {

// CPU seconds of the whole process (all threads): steadier than wall time on
// a shared machine.
inline double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

inline std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

// stdout of a shell command (a peer or a child side); a failure is reported on stderr.
inline std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  if (pclose(p) != 0) std::fprintf(stderr, "command failed: %s\n", cmd.c_str());
  return out;
}

// A shell prefix that gives a child process `threads` OpenBLAS threads.
// torch.set_num_threads does not size a pthreads OpenBLAS's own pool (Debian's
// torch), ConfigureTorchThreads does: both sides of a bench get the count this way.
inline std::string BlasThreadsEnv(const std::string& threads) { return "OPENBLAS_NUM_THREADS=" + threads + " "; }

// The process's peak resident set (VmHWM) in MiB, −1 when unreadable.
inline double VmHwmMiB() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

}  // namespace uniter::bench
