// Resume for the loops other than train_loop.cc's (ITM, RE, VCR): the same
// training state (trainer/internal/train_state.h's layout: model.*, optim.*,
// rng.torch[_rankN] in state_step_N.pt; "loop", "options", "model_config" in
// the .json) with each loop's own position under "loop" and its own extra
// tensors (its Python generator, sample orders) beside them.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trainer/internal/checkpoint.h"
#include "trainer/internal/task_model.h"
#include "trainer/internal/train_state.h"
#include "trainer/optim/internal/adamw.h"

namespace uniter::trainer {

// What output_dir holds: absent or empty → nullopt (a new run); our training
// state → it, after checking that the options (hps.json) and the model
// config's text are the saved run's; anything else → UsageError, before
// anything is written.
std::optional<SavedState> StateToResume(const std::string& output_dir, const std::string& hps_json,
                                        const std::string& model_json);

// Everything a loop needs written: the model's parameters and buffers,
// AdamW's moments, the default torch generator of this process and of every
// other rank (`rank_rngs[r]`, r ≥ 1, as gathered to rank 0), the loop's
// `extra` tensors (keys as given, e.g. "rng.python") and its `loop` values
// (world_size added).
void SaveTaskState(const std::string& output_dir, int64_t step, TaskModelImpl& model, const optim::AdamW& optimizer,
                   const std::vector<std::string>& rank_rngs, StateDict extra, nlohmann::json loop, int world_size,
                   const std::string& hps_json, const std::string& model_json);

// Puts back what SaveTaskState wrote into `model` and `optimizer` and this
// rank's torch generator; checks the saved world size; returns the loop's
// values and its extra tensors (by key). FormatError naming the file on a
// missing or misshapen entry.
struct RestoredState {
  nlohmann::json loop;
  std::map<std::string, at::Tensor> extra;
};
RestoredState RestoreTaskState(const SavedState& state, TaskModelImpl& model, optim::AdamW& optimizer, int rank,
                               int world_size, const std::string& output_dir);

// The default torch generator's state as bytes, for gathering to rank 0.
std::string TorchRngBytes();

// int64 vector ⇄ tensor, for sample orders.
at::Tensor Int64Tensor(const std::vector<int64_t>& v);
std::vector<int64_t> Int64Vector(const at::Tensor& t, const std::string& key, const std::string& where);

}  // namespace uniter::trainer
