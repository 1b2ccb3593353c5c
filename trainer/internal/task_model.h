// UNITER's finetuning models (model/nlvr2.py, model/vqa.py, model/ve.py): the
// shared encoder registered as `uniter` plus one task head, with the task's
// loss (compute_loss=True, reduction none) and the reduction its train_*.py
// applies. The encoder never knows which task runs.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <memory>
#include <string>

#include "trainer/config.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/batch.h"
#include "trainer/model.h"
#include "trainer/internal/uniter_model.h"

namespace uniter::trainer {

class TaskModelImpl : public torch::nn::Module {
 public:
  explicit TaskModelImpl(const UniterConfig& config);

  // The task's raw scores (compute_loss=False): NLVR2 [examples, 2],
  // VQA [B, num_answers], VE [B, 3].
  virtual at::Tensor Scores(const Batch& batch) = 0;
  // The model's loss (compute_loss=True): per element, reduction none.
  virtual at::Tensor Loss(const at::Tensor& scores, const Batch& batch) const = 0;
  // The scalar train_*.py backpropagates: NLVR2 mean; VQA/VE mean × #answers.
  virtual at::Tensor TrainLoss(const at::Tensor& loss, const Batch& batch) const = 0;
  // Rows of uniter.embeddings.token_type_embeddings a checkpoint with fewer
  // rows is expanded to on load (NLVR2's init_type_embedding); 0 = none.
  virtual int64_t ExpandedTypeRows() const { return 0; }

  UniterModel uniter{nullptr};
};
TORCH_MODULE(TaskModel);

// Builds the model for `options` with UNITER's init (as from_pretrained on an
// empty state dict, then NLVR2's init_type_embedding). Draws from LibTorch's
// default generator: seed it first for reproducible weights.
TaskModel MakeTaskModel(const UniterConfig& config, const TaskOptions& options);

// One inference forward, as every `uniter infer` task runs it: `batch` moved
// to place.device (tensors already there stay), the model's Scores under
// place.amp's autocast (the model must already be on the device), the scores
// back as contiguous fp32 on the CPU. Call under no_grad in eval mode.
at::Tensor InferScores(TaskModelImpl& model, const Batch& batch, const InferPlacement& place);

// UNITER's multi-head attention (model/attention.py, a copy of PyTorch 1.1's):
// packed in_proj_weight [3H, H] (xavier_uniform) and in_proj_bias (0),
// out_proj; sequence-first inputs (L, N, E); keys where key_padding_mask is
// true get −inf. Its dropout is a plain float (set_dropout never changes it).
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout);
  // query [L, N, E]; key == value [S, N, E]; key_padding_mask [N, S] bool.
  at::Tensor forward(const at::Tensor& query, const at::Tensor& key_value, const at::Tensor& key_padding_mask);

  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t embed_dim_, heads_;
  double dropout_;
};
TORCH_MODULE(MultiheadAttention);

// model/nlvr2.py's three heads.
std::shared_ptr<TaskModelImpl> MakeNlvr2Model(const UniterConfig& config, const std::string& variant);

// model/vqa.py (VQA and, with 3 answers, VE).
std::shared_ptr<TaskModelImpl> MakeVqaModel(const UniterConfig& config, int64_t num_answers);

// model/itm.py's UniterForImageTextRetrieval (trainer/itm.cc).
std::shared_ptr<TaskModelImpl> MakeItmModel(const UniterConfig& config, double margin);

// init_output on an ITM model: rank_output := itm_output row 1, as a view
// sharing its storage (UNITER assigns `.data` slices). No-op for other tasks.
void InitItmRankOutput(TaskModelImpl& model);
// model/re.py (`mlp` 1 or 2) and model/vcr.py (type rows expanded to 4 and
// 81 word rows added, as train_vcr.py does before any load).
std::shared_ptr<TaskModelImpl> MakeReModel(const UniterConfig& config, int mlp);
std::shared_ptr<TaskModelImpl> MakeVcrModel(const UniterConfig& config);
// train_vcr.py's checkpoint loads: `from_pretrain` = from_pretrained on the
// unexpanded model then the expansion (a 2-row type table → [t0, t1, t0, t0],
// a V-row word table keeps the model's 81 new rows); otherwise the keys that
// match the expanded model, shapes as they are.
LoadReport LoadVcrCheckpoint(TaskModelImpl& model, const std::string& path, bool from_pretrain);

}  // namespace uniter::trainer
