#include "extractor/launch.h"

#include <torch/cuda.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "common/error.h"

namespace uniter::extractor {
namespace {

// A whole non-negative decimal number, or -1.
int ParseIndex(std::string_view s) {
  int v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return -1;
  return v;
}

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int EnvIndex(const char* name) {
  const char* v = Env(name);
  const int i = ParseIndex(v);
  if (i < 0) throw UsageError(std::string("environment variable ") + name + "='" + v + "' is not a number >= 0");
  return i;
}

Shard FromEnv(const char* rank, const char* size, const char* source) {
  Shard s;
  s.index = EnvIndex(rank);
  s.count = EnvIndex(size);
  s.source = source;
  if (s.count < 1 || s.index >= s.count)
    throw UsageError(std::string(source) + ": " + rank + "=" + std::to_string(s.index) + " is not below " + size +
                     "=" + std::to_string(s.count));
  return s;
}

}  // namespace

Shard ResolveShard(const std::string& spec) {
  if (spec.empty() || spec == "auto") {
    if (Env("RANK") && Env("WORLD_SIZE")) return FromEnv("RANK", "WORLD_SIZE", "torchrun");
    if (Env("SLURM_PROCID") && Env("SLURM_NTASKS")) return FromEnv("SLURM_PROCID", "SLURM_NTASKS", "SLURM");
    return {};
  }
  const auto slash = spec.find('/');
  Shard s;
  s.source = "--shard";
  s.index = slash == std::string::npos ? -1 : ParseIndex(std::string_view(spec).substr(0, slash));
  s.count = slash == std::string::npos ? -1 : ParseIndex(std::string_view(spec).substr(slash + 1));
  if (s.index < 0 || s.count < 1 || s.index >= s.count)
    throw UsageError("--shard wants k/N with 0 <= k < N (or auto), got '" + spec + "'");
  return s;
}

std::vector<std::string> ResolveDevices(const std::string& spec) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string d = spec.substr(start, comma - start);
    start = comma + 1;
    if (d == "cpu") {
      out.push_back(d);
    } else if (d == "cuda") {
      int local = 0;
      if (Env("LOCAL_RANK")) local = EnvIndex("LOCAL_RANK");
      else if (Env("SLURM_LOCALID")) local = EnvIndex("SLURM_LOCALID");
      out.push_back("cuda:" + std::to_string(local));
    } else if (d.rfind("cuda:", 0) == 0 && ParseIndex(std::string_view(d).substr(5)) >= 0) {
      out.push_back("cuda:" + std::to_string(ParseIndex(std::string_view(d).substr(5))));
    } else {
      throw UsageError("--device wants cpu, cuda, cuda:N or a comma list of them, got '" + d + "' in '" + spec + "'");
    }
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] != "cpu" && std::count(out.begin(), out.end(), out[i]) > 1)
      throw UsageError("--device lists " + out[i] + " twice");
  return out;
}

void CheckDevice(const std::string& device) {
  if (device == "cpu") return;
  const int index = ParseIndex(std::string_view(device).substr(device.find(':') + 1));
  if (!torch::cuda::is_available())
    throw UsageError("--device " + device + ": this build's LibTorch has no CUDA or the machine no GPU; use --device cpu");
  const int n = static_cast<int>(torch::cuda::device_count());
  if (index >= n) throw UsageError("--device " + device + ": no such GPU (" + std::to_string(n) + " visible)");
}

}  // namespace uniter::extractor
