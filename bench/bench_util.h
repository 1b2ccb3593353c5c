// Small helpers the benchmark programs share.
#pragma once

#include <sys/resource.h>

#include <algorithm>
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

}  // namespace uniter::bench
