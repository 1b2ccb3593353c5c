// model/re.py: UniterForReferringExpressionComprehension with the `cls`
// loss — one score per image box of the row, text slots left out.
#include <ATen/ATen.h>
#include <torch/nn/modules/container/functional.h>

#include <algorithm>

#include "common/error.h"
#include "trainer/internal/task_model.h"

namespace uniter::trainer {
namespace {

class ReModelImpl : public TaskModelImpl {
 public:
  ReModelImpl(const UniterConfig& c, int mlp) : TaskModelImpl(c) {
    const int64_t h = c.hidden_size;
    // Keys as UNITER's: re_output.{weight,bias} (mlp 1), re_output.{0,2,3}.* (mlp 2).
    if (mlp == 1) {
      re_linear_ = register_module("re_output", torch::nn::Linear(h, 1));
    } else {
      re_output_ = register_module(
          "re_output", torch::nn::Sequential(torch::nn::Linear(h, h),
                                             torch::nn::Functional([](const at::Tensor& x) { return Gelu(x); }),
                                             MakeLayerNorm(h), torch::nn::Linear(h, 1)));
    }
    InitUniterWeights(*this, c.initializer_range);
  }

  // [B, max nbb]: the image slots' scores, padding boxes −1e4.
  at::Tensor Scores(const Batch& b) override {
    UniterModelImpl::Inputs in{b.input_ids, b.position_ids, b.img_feat, b.img_pos_feat,
                               b.attn_masks, b.gather_index, {}, {}, {}};
    const at::Tensor seq = uniter(in);
    const at::Tensor img = ImageHidden(seq, b);
    at::Tensor scores = (re_linear_ ? re_linear_->forward(img) : re_output_->forward(img)).squeeze(2);
    return scores.masked_fill(b.obj_masks, -1e4);
  }
  at::Tensor Loss(const at::Tensor& scores, const Batch& b) const override {
    return at::cross_entropy_loss(scores, b.targets, {}, at::Reduction::None);
  }
  // train_re.py: loss.sum() (its TODO notwithstanding).
  at::Tensor TrainLoss(const at::Tensor& loss, const Batch&) const override { return loss.sum(); }

 private:
  // _get_image_hidden: row i's slots [tl_i, tl_i + nbb_i), zero-padded to the longest.
  static at::Tensor ImageHidden(const at::Tensor& seq, const Batch& b) {
    const int64_t rows = seq.size(0), hid = seq.size(2);
    if (static_cast<int64_t>(b.txt_lens.size()) != rows || static_cast<int64_t>(b.num_bbs.size()) != rows)
      throw UsageError("RE batch needs txt_lens and num_bbs per row");
    const int64_t max_bb = *std::max_element(b.num_bbs.begin(), b.num_bbs.end());
    std::vector<at::Tensor> out;
    for (int64_t i = 0; i < rows; ++i) {
      at::Tensor h = seq.slice(0, i, i + 1).slice(1, b.txt_lens[i], b.txt_lens[i] + b.num_bbs[i]);
      if (b.num_bbs[i] < max_bb) h = at::cat({h, at::zeros({1, max_bb - b.num_bbs[i], hid}, h.options())}, 1);
      out.push_back(h);
    }
    return at::cat(out, 0);
  }

  torch::nn::Linear re_linear_{nullptr};
  torch::nn::Sequential re_output_{nullptr};
};

}  // namespace

std::shared_ptr<TaskModelImpl> MakeReModel(const UniterConfig& config, int mlp) {
  if (mlp != 1 && mlp != 2) throw UsageError("mlp must be 1 or 2 (UNITER's RE head), not " + std::to_string(mlp));
  return std::make_shared<ReModelImpl>(config, mlp);
}

}  // namespace uniter::trainer
