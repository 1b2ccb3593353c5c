// The training state `uniter train` saves beside each checkpoint so that a run
// killed at any moment (kill -9 included) resumes to the very result of an
// uninterrupted one. Layout, in output_dir/train_state/:
//   state_step_N.pt    zip state dict (torch.load reads it): "model.<key>" (the
//                      model's parameters and buffers), "optim.<param>.{step,
//                      exp_avg,exp_avg_sq}" (AdamW::StateTensors), "rng.python"
//                      (int64 [625]: MT19937's 624 words + position, now),
//                      "rng.python_epoch" (the same when the current epoch's
//                      batches were drawn), "rng.torch" (uint8: the default
//                      CPU generator's state, which dropout draws from),
//                      "rng.cuda" (the training GPU's generator, CUDA runs),
//                      "scaler.scale" (float32) and "scaler.growth_tracker"
//                      (int64): the fp16 loss scaler (fp16 runs only).
//   state_step_N.json  {"format": "uniter-train-state", "version": 1, "step": N,
//                      "tensors": "state_step_N.pt", "loop": {global_step,
//                      epoch, batch_in_epoch, n_examples, loss_ema, loss_set,
//                      last_grad_norm, val_acc, val_loss, val_results},
//                      "options": the run's hps.json object, "model_config":
//                      the model config's text}.
// Both are written with WriteFileAtomic (temp file, fsync, rename), the .pt
// first: a state is complete once its .json exists; older states are then
// removed. Resuming loads the newest complete one.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "trainer/data/py_random.h"
#include "trainer/internal/checkpoint.h"

namespace uniter::trainer {

struct SavedState {
  int64_t step = 0;
  nlohmann::json meta;  // the .json above
  std::string tensors_path;
};

// output_dir/train_state.
std::string TrainStateDir(const std::string& output_dir);

// The newest complete state in output_dir (a parseable state_step_N.json of
// our format whose .pt exists), or nullopt when there is none.
std::optional<SavedState> FindNewestState(const std::string& output_dir);

// Writes state_step_{step}.{pt,json} and removes older states.
void WriteTrainState(const std::string& output_dir, int64_t step, const StateDict& tensors, nlohmann::json meta);

// UsageError "cannot resume <dir>: option '<key>' is <now> here but <saved>
// in the saved run" for the first differing key; keys that cannot change a
// result (output_dir, n_workers, pin_mem, config) are not compared.
void CheckSameOptions(const nlohmann::json& saved, const nlohmann::json& now, const std::string& output_dir);

at::Tensor PyRandomStateTensor(const data::PyRandom::State& s);
// FormatError naming `where` when the tensor is not a valid state.
data::PyRandom::State PyRandomStateFrom(const at::Tensor& t, const std::string& where);

// The default CPU generator's state (torch.get_rng_state()) and its restore.
at::Tensor TorchRngState();
void SetTorchRngState(const at::Tensor& state);

}  // namespace uniter::trainer
