#include "trainer/internal/task_state.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "common/error.h"

namespace uniter::trainer {

namespace fs = std::filesystem;

std::optional<SavedState> StateToResume(const std::string& output_dir, const std::string& hps_json,
                                        const std::string& model_json) {
  std::error_code ec;
  if (!fs::exists(output_dir, ec)) return std::nullopt;
  if (!fs::is_directory(output_dir, ec)) throw UsageError("output_dir " + output_dir + " is not a folder");
  if (fs::is_empty(output_dir, ec)) return std::nullopt;
  std::optional<SavedState> s = FindNewestState(output_dir);
  if (!s && fs::exists(fs::path(output_dir) / "log" / "hps.json", ec))
    throw UsageError("output_dir " + output_dir +
                     " holds a run stopped before its first checkpoint (no training state to resume; use a new or "
                     "empty folder)");
  if (!s)
    throw UsageError("output_dir " + output_dir +
                     " is not empty and holds no resumable training state (use a new or empty folder)");
  CheckSameOptions(s->meta.value("options", nlohmann::json::object()), nlohmann::json::parse(hps_json), output_dir);
  if (s->meta.value("model_config", "") != model_json)
    throw UsageError("cannot resume " + output_dir +
                     ": option 'model_config' has other contents than in the saved run (use the same options, or a "
                     "new output_dir)");
  return s;
}

std::string TorchRngBytes() {
  const at::Tensor t = TorchRngState().contiguous();
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel());
}

void SaveTaskState(const std::string& output_dir, int64_t step, TaskModelImpl& model, const optim::AdamW& optimizer,
                   const std::vector<std::string>& rank_rngs, StateDict extra, nlohmann::json loop, int world_size,
                   const std::string& hps_json, const std::string& model_json) {
  StateDict tensors;
  for (const auto& p : model.named_parameters())
    tensors.emplace_back("model." + p.key(), p.value().detach().cpu().contiguous());
  for (const auto& b : model.named_buffers())
    tensors.emplace_back("model." + b.key(), b.value().detach().cpu().contiguous());
  for (auto& [name, t] : optimizer.StateTensors()) tensors.emplace_back("optim." + name, t.cpu().contiguous());
  tensors.emplace_back("rng.torch", TorchRngState());
  for (size_t r = 1; r < rank_rngs.size(); ++r) {
    at::Tensor t = at::empty({static_cast<int64_t>(rank_rngs[r].size())}, at::kByte);
    std::memcpy(t.data_ptr(), rank_rngs[r].data(), rank_rngs[r].size());
    tensors.emplace_back("rng.torch_rank" + std::to_string(r), t);
  }
  for (auto& [k, t] : extra) tensors.emplace_back(k, t.contiguous());
  loop["world_size"] = world_size;
  nlohmann::json meta = {{"loop", std::move(loop)}, {"options", nlohmann::json::parse(hps_json)},
                         {"model_config", model_json}};
  WriteTrainState(output_dir, step, tensors, std::move(meta));
}

RestoredState RestoreTaskState(const SavedState& state, TaskModelImpl& model, optim::AdamW& optimizer, int rank,
                               int world_size, const std::string& output_dir) {
  const std::string& where = state.tensors_path;
  RestoredState out;
  out.loop = state.meta.at("loop");
  const int saved_world = out.loop.value("world_size", 1);
  if (saved_world != world_size)
    throw UsageError("cannot resume " + output_dir + ": it was trained by " + std::to_string(saved_world) +
                     " process(es), this run has " + std::to_string(world_size) + " (use the same number)");
  std::map<std::string, at::Tensor> model_state;
  StateDict optim_state;
  for (auto& [key, t] : ReadStateDict(where)) {
    if (key.rfind("model.", 0) == 0) model_state[key.substr(6)] = t;
    else if (key.rfind("optim.", 0) == 0) optim_state.emplace_back(key.substr(6), t);
    else out.extra[key] = t;
  }
  {
    torch::NoGradGuard no_grad;
    auto restore = [&](const std::string& key, at::Tensor dst) {
      auto it = model_state.find(key);
      if (it == model_state.end()) throw FormatError("key 'model." + key + "' is missing", where);
      if (!it->second.sizes().equals(dst.sizes()) || it->second.scalar_type() != dst.scalar_type())
        throw FormatError("key 'model." + key + "': shape or dtype differs from the model's", where);
      dst.copy_(it->second);
    };
    for (const auto& p : model.named_parameters()) restore(p.key(), p.value());
    for (const auto& b : model.named_buffers()) restore(b.key(), b.value());
  }
  optimizer.LoadStateTensors(optim_state);
  // A parameter stepped before has a (zeroed) grad that later steps keep
  // stepping; an undefined one would be skipped (AdamW's `p.grad is None`).
  std::set<std::string> stepped;
  for (const auto& [name, t] : optim_state) stepped.insert(name.substr(0, name.rfind('.')));
  for (const auto& g : optimizer.groups())
    for (size_t i = 0; i < g.names.size(); ++i)
      if (stepped.count(g.names[i])) g.params[i].mutable_grad() = at::zeros_like(g.params[i]);
  // Each rank's dropout draws differ: rank r > 0 resumes its own generator.
  const std::string torch_rng = rank == 0 ? "rng.torch" : "rng.torch_rank" + std::to_string(rank);
  auto it = out.extra.find(torch_rng);
  if (it == out.extra.end()) throw FormatError("key '" + torch_rng + "' is missing", where);
  SetTorchRngState(it->second);
  return out;
}

at::Tensor Int64Tensor(const std::vector<int64_t>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kLong);
  if (!v.empty()) std::memcpy(t.data_ptr(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

std::vector<int64_t> Int64Vector(const at::Tensor& t, const std::string& key, const std::string& where) {
  if (!t.defined() || t.scalar_type() != at::kLong || t.dim() != 1)
    throw FormatError("key '" + key + "' must be an int64 vector", where);
  const at::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace uniter::trainer
