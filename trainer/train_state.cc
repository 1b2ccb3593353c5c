#include "trainer/internal/train_state.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "uniter-train-state";
constexpr int kVersion = 1;

std::string StemOf(int64_t step) { return "state_step_" + std::to_string(step); }

// N of state_step_N<suffix>, or -1.
int64_t StepOfFile(const fs::path& p, const std::string& suffix) {
  const std::string name = p.filename().string();
  const std::string prefix = "state_step_";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 15 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

int64_t StepOfJson(const fs::path& p) { return StepOfFile(p, ".json"); }

std::optional<nlohmann::json> ReadMeta(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  try {
    nlohmann::json j = nlohmann::json::parse(s.str());
    if (!j.is_object() || j.value("format", "") != kFormat) return std::nullopt;
    return j;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string TrainStateDir(const std::string& output_dir) { return output_dir + "/train_state"; }

std::optional<SavedState> FindNewestState(const std::string& output_dir) {
  const fs::path dir = TrainStateDir(output_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  std::set<int64_t, std::greater<>> steps;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (const int64_t n = StepOfJson(e.path()); n >= 0) steps.insert(n);
  for (int64_t n : steps) {
    auto meta = ReadMeta(dir / (StemOf(n) + ".json"));
    if (!meta) continue;
    const fs::path pt = dir / (StemOf(n) + ".pt");
    if (!fs::is_regular_file(pt, ec)) continue;
    if (meta->value("version", 0) != kVersion)
      throw FormatError("training state version " + std::to_string(meta->value("version", 0)) +
                            " is not supported (expected " + std::to_string(kVersion) + ")",
                        (dir / (StemOf(n) + ".json")).string());
    return SavedState{n, std::move(*meta), pt.string()};
  }
  return std::nullopt;
}

void WriteTrainState(const std::string& output_dir, int64_t step, const StateDict& tensors, nlohmann::json meta) {
  const fs::path dir = TrainStateDir(output_dir);
  fs::create_directories(dir);
  WriteStateDict(tensors, (dir / (StemOf(step) + ".pt")).string());
  meta["format"] = kFormat;
  meta["version"] = kVersion;
  meta["step"] = step;
  meta["tensors"] = StemOf(step) + ".pt";
  WriteFileAtomic((dir / (StemOf(step) + ".json")).string(), meta.dump(2) + "\n");
  // Only now is the new state complete: drop the older ones (json first, so
  // none is ever seen half-removed).
  // A .pt without its .json (a run killed between the two removes, or
  // before its .json was written) goes too.
  std::error_code ec;
  std::vector<int64_t> older, older_pt;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (const int64_t n = StepOfJson(e.path()); n >= 0 && n != step) older.push_back(n);
    if (const int64_t n = StepOfFile(e.path(), ".pt"); n >= 0 && n != step) older_pt.push_back(n);
  }
  for (int64_t n : older) fs::remove(dir / (StemOf(n) + ".json"), ec);
  for (int64_t n : older_pt) fs::remove(dir / (StemOf(n) + ".pt"), ec);
}

void CheckSameOptions(const nlohmann::json& saved, const nlohmann::json& now, const std::string& output_dir) {
  static const std::set<std::string> kHarmless = {"output_dir", "n_workers", "pin_mem", "config"};
  std::set<std::string> keys;
  for (const auto& [k, v] : saved.items()) keys.insert(k);
  for (const auto& [k, v] : now.items()) keys.insert(k);
  for (const std::string& k : keys) {
    if (kHarmless.count(k)) continue;
    const nlohmann::json a = now.contains(k) ? now[k] : nlohmann::json("(unset)");
    const nlohmann::json b = saved.contains(k) ? saved[k] : nlohmann::json("(unset)");
    if (a != b)
      throw UsageError("cannot resume " + output_dir + ": option '" + k + "' is " + a.dump() + " here but " +
                       b.dump() + " in the saved run (use the same options, or a new output_dir)");
  }
}

at::Tensor PyRandomStateTensor(const data::PyRandom::State& s) {
  at::Tensor t = at::empty({data::PyRandom::kStateWords + 1}, at::kLong);
  auto* p = t.data_ptr<int64_t>();
  for (int i = 0; i < data::PyRandom::kStateWords; ++i) p[i] = s.mt[i];
  p[data::PyRandom::kStateWords] = s.index;
  return t;
}

data::PyRandom::State PyRandomStateFrom(const at::Tensor& t, const std::string& where) {
  if (t.scalar_type() != at::kLong || t.dim() != 1 || t.size(0) != data::PyRandom::kStateWords + 1)
    throw FormatError("a Python random state must be int64 [625]", where);
  const at::Tensor c = t.contiguous();
  const auto* p = c.data_ptr<int64_t>();
  data::PyRandom::State s;
  for (int i = 0; i < data::PyRandom::kStateWords; ++i) {
    if (p[i] < 0 || p[i] > 0xFFFFFFFFLL) throw FormatError("a Python random state word is out of range", where);
    s.mt[i] = static_cast<uint32_t>(p[i]);
  }
  if (p[data::PyRandom::kStateWords] < 0 || p[data::PyRandom::kStateWords] > data::PyRandom::kStateWords)
    throw FormatError("a Python random state position is out of range", where);
  s.index = static_cast<int>(p[data::PyRandom::kStateWords]);
  return s;
}

at::Tensor TorchRngState() {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state().clone();
}

void SetTorchRngState(const at::Tensor& state) {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

}  // namespace uniter::trainer
