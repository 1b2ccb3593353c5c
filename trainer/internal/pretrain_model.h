// UNITER's pretraining model (model/pretrain.py UniterForPretraining): the
// encoder plus the MLM head (cls.predictions, decoder tied to the word
// embeddings), MRFR's feat_regress (its weight tied to img_linear's), MRC's
// region_classifier and ITM's itm_output with word-region alignment by optimal
// transport (model/ot.py). Registered under UNITER's names, so
// named_parameters() holds UNITER's checkpoint keys — the tied tensors under
// both of their names, as torch's state_dict() lists them.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>

#include "trainer/config.h"
#include "trainer/internal/pretrain_batch.h"
#include "trainer/internal/uniter_model.h"
#include "trainer/pretrain_task.h"

namespace uniter::trainer {

// One task's forward (compute_loss=True): the per-unit losses, reduction none,
// and for ITM with OT the OT distances of the positive and negative pairs.
struct PretrainOutput {
  at::Tensor loss;    // MLM [masked tokens]; MRFR [S, img_dim]; MRC [S]; MRC-kl [S, C]; ITM [B]
  at::Tensor ot_pos;  // ITM with OT: [#targets == 1], else undefined
  at::Tensor ot_neg;  // [#targets == 0]
};

class PretrainModelImpl : public torch::nn::Module {
 public:
  // img_label_dim: the detector's classes with background (1601).
  PretrainModelImpl(const UniterConfig& config, int64_t img_dim, int64_t img_label_dim);

  // forward(batch, task, compute_loss=True).
  PretrainOutput Loss(PretrainTask task, const PretrainBatch& b);
  // compute_loss=False: MLM [masked, vocab]; MRFR [S, img_dim]; MRC [S, C]; ITM [B, 2].
  at::Tensor Scores(PretrainTask task, const PretrainBatch& b);
  // The scalar pretrain.py backpropagates: the mean of the losses; ITM with
  // OT adds itm_ot_lambda · (Σ ot_pos − Σ ot_neg) / (#pos + #neg).
  static at::Tensor TrainLoss(PretrainTask task, const PretrainOutput& out, double itm_ot_lambda);
  // ITM's compute_loss=False with OT (validate_itm): scores [B, 2]; `ot`
  // (when not null and the batch has ot_inputs) gets ot_pos / ot_neg.
  at::Tensor ItmScores(const PretrainBatch& b, PretrainOutput* ot);

  // pretrain_vcr.py's model set-up (UniterForPretrainingForVCR, after the
  // checkpoint is loaded): init_type_embedding (4 type rows [t0, t1, t0, t0])
  // then init_word_embedding(num_special_tokens) (V + n word rows, the first V
  // copied, the rest N(0, σ)) with a fresh MLM head tied to them — its
  // transform in torch's default init, its bias zero — drawing from LibTorch's
  // generator what UNITER's code draws from torch's, in the same order.
  void ExpandForVcr(int64_t num_special_tokens = 81);

  UniterModel uniter{nullptr};

 private:
  std::shared_ptr<torch::nn::Module> MakeMlmHead(int64_t hidden);
  // The encoder's [B, L, H]; only `output_rows` ([B, L] bool; undefined =
  // all) are the model's values, the others zeros (UniterModel::forward).
  at::Tensor Encode(const PretrainBatch& b, bool mask_regions, const at::Tensor& output_rows);
  at::Tensor MlmScores(const PretrainBatch& b);
  at::Tensor RegionHidden(const PretrainBatch& b);

  // cls.predictions: transform (dense, act, LayerNorm) → decoder (tied) + bias.
  torch::nn::Module* predictions_ = nullptr;
  torch::nn::Linear transform_dense_{nullptr};
  torch::nn::LayerNorm transform_norm_{nullptr};
  at::Tensor decoder_weight_, mlm_bias_;
  std::string act_;
  // feat_regress: net (Linear, GELU, LayerNorm) → F.linear(·, img_linear.weightᵀ, bias).
  torch::nn::Sequential regress_net_{nullptr};
  at::Tensor regress_weight_, regress_bias_;
  torch::nn::Sequential region_classifier_{nullptr};  // its net
  torch::nn::Linear itm_output_{nullptr};
};
TORCH_MODULE(PretrainModel);

}  // namespace uniter::trainer
