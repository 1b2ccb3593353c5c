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
#include "trainer/internal/batch.h"
#include "trainer/internal/uniter_model.h"

namespace uniter::trainer {

// pretrain.py's task names: mlm, mrfr, mrc, mrc-kl (any name starting "mrc"
// holding "kl"), itm.
enum class PretrainTask { kMlm, kMrfr, kMrc, kMrcKl, kItm };
// "mlm", "mrfr", "mrc", "mrckl"/"mrc-kl", "itm": UsageError otherwise.
PretrainTask ParsePretrainTask(const std::string& name);

// What UNITER's pretraining collates add to a Batch (data/{mlm,mrm,itm}.py),
// under its key names.
struct PretrainBatch {
  Batch batch;              // input_ids … gather_index; ITM: targets [B] int64; MRM: img_masks
  at::Tensor txt_labels;    // MLM [B, T] int64, −1 where not masked
  at::Tensor img_mask_tgt;  // MRM [B, L] bool: the masked regions' slots in the joint sequence
  at::Tensor feat_targets;  // MRFR [S, img_dim]: the masked regions' input features
  at::Tensor label_targets; // MRC [S, 1601]: the masked regions' detector soft labels
  // ITM's ot_inputs (itm_ot_collate); ot_scatter undefined = no OT.
  at::Tensor ot_scatter;    // [B, L] int64
  int64_t scatter_max = 0;  // ot_scatter.max()
  at::Tensor txt_pad, img_pad;  // [B, max_tl], [B, max_nbb] bool, true = padding
};

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

  UniterModel uniter{nullptr};

 private:
  at::Tensor Encode(const PretrainBatch& b, bool mask_regions);
  at::Tensor MlmScores(const PretrainBatch& b);
  at::Tensor RegionHidden(const PretrainBatch& b);
  at::Tensor ItmScores(const PretrainBatch& b, PretrainOutput* ot);

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
