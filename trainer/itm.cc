// model/itm.py: UniterForImageTextRetrieval — the pooled [CLS] through
// rank_output Linear(H, 1), trained with the ranking hinge loss
// clamp(margin + σ(neg) − σ(pos), 0) over each example's sample_size rows
// (gt pair first). itm_output Linear(H, 2) is kept for the pretrained ITM
// head that init_output copies.
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include "common/error.h"
#include "trainer/internal/task_model.h"

namespace uniter::trainer {
namespace {

class ItmModelImpl : public TaskModelImpl {
 public:
  ItmModelImpl(const UniterConfig& c, double margin) : TaskModelImpl(c), margin_(margin) {
    itm_output = register_module("itm_output", torch::nn::Linear(c.hidden_size, 2));
    rank_output = register_module("rank_output", torch::nn::Linear(c.hidden_size, 1));
    InitUniterWeights(*this, c.initializer_range);
  }

  // [rows, 1] raw rank scores (compute_loss=False).
  at::Tensor Scores(const Batch& b) override {
    // UNITER's ITM forward passes no type ids.
    UniterModelImpl::Inputs in{b.input_ids, b.position_ids, b.img_feat, b.img_pos_feat,
                               b.attn_masks, b.gather_index, {}, {}, {}, FirstRows(b.attn_masks)};
    return rank_output(uniter->pooler(uniter(in)));
  }
  // [examples, sample_size − 1] hinge terms (compute_loss=True).
  at::Tensor Loss(const at::Tensor& scores, const Batch& b) const override {
    if (b.sample_size < 2) throw UsageError("ITM loss needs a sample_size of at least 2 (gt + a negative)");
    const at::Tensor s = at::sigmoid(scores).contiguous().view({-1, b.sample_size});
    const at::Tensor pos = s.slice(1, 0, 1), neg = s.slice(1, 1);
    return at::clamp_min(margin_ + neg - pos, 0);
  }
  at::Tensor TrainLoss(const at::Tensor& loss, const Batch&) const override { return loss.mean(); }

  torch::nn::Linear itm_output{nullptr}, rank_output{nullptr};

 private:
  double margin_;
};

}  // namespace

std::shared_ptr<TaskModelImpl> MakeItmModel(const UniterConfig& config, double margin) {
  return std::make_shared<ItmModelImpl>(config, margin);
}

void InitItmRankOutput(TaskModelImpl& model) {
  auto* itm = dynamic_cast<ItmModelImpl*>(&model);
  if (!itm) return;
  // `rank_output.weight.data = itm_output.weight.data[1:, :]`: a view, so the
  // two share storage from here on (an update to rank_output also moves
  // itm_output row 1, and a saved checkpoint shows both).
  itm->rank_output->weight.set_data(itm->itm_output->weight.detach().slice(0, 1, 2));
  itm->rank_output->bias.set_data(itm->itm_output->bias.detach().slice(0, 1, 2));
}

}  // namespace uniter::trainer
