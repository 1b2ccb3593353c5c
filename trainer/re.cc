// model/re.py: UniterForReferringExpressionComprehension — one score per
// image box of the row, text slots left out; the `cls` loss here, the `rank`
// loss's sampling and margin (trainer/internal/re_rank.h) below.
#include <ATen/ATen.h>
#include <torch/nn/modules/container/functional.h>

#include <algorithm>

#include "common/error.h"
#include "trainer/internal/re_rank.h"
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

std::vector<int64_t> SampleReNegatives(const at::Tensor& scores, const Batch& batch, double hard_ratio,
                                       data::NpRandom& np_rng, data::PyRandom& py_rng) {
  const at::Tensor s = scores.detach().to(at::kFloat).contiguous();
  const at::Tensor t = batch.targets.to(at::kLong).reshape({-1}).contiguous();
  const int64_t rows = s.size(0), width = s.size(1);
  if (t.numel() != rows || static_cast<int64_t>(batch.num_bbs.size()) != rows)
    throw UsageError("RE rank loss: targets and num_bbs need one entry per row");
  std::vector<int64_t> neg(rows);
  std::vector<int64_t> order(width);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t nbb = batch.num_bbs[i], target = t.data_ptr<int64_t>()[i];
    if (nbb < 2)
      throw UsageError("RE rank loss: an image with " + std::to_string(nbb) +
                       " box has no negative (UNITER's sample_neg_ix would never return)");
    if (np_rng.Uniform(0, 1) < hard_ratio) {
      // torch.argsort(descending=True) on the CPU keeps equal scores in index order.
      const float* row = s.data_ptr<float>() + i * width;
      for (int64_t j = 0; j < width; ++j) order[j] = j;
      std::stable_sort(order.begin(), order.end(), [row](int64_t a, int64_t b) { return row[a] > row[b]; });
      const int64_t ix = order[0] != target ? order[0] : order[1];
      if (ix >= nbb)
        throw UsageError("RE rank loss: the hardest negative of row " + std::to_string(i) + " is padding slot " +
                         std::to_string(ix) + " (num_bb " + std::to_string(nbb) + ")");
      neg[i] = ix;
    } else {
      int64_t ix;
      do {
        ix = static_cast<int64_t>(py_rng.RandBelow(static_cast<uint64_t>(nbb)));  // random.randint(0, nbb - 1)
      } while (ix == target);
      neg[i] = ix;
    }
  }
  return neg;
}

at::Tensor ReRankLoss(const at::Tensor& scores, const at::Tensor& targets, const std::vector<int64_t>& neg_ix,
                      double margin) {
  const int64_t n = scores.size(0);
  const at::Tensor pos = at::sigmoid(scores.gather(1, targets.to(at::kLong).view({n, 1}))).view(-1);
  const at::Tensor neg_t = at::tensor(neg_ix, at::TensorOptions().dtype(at::kLong)).to(scores.device()).view({n, 1});
  const at::Tensor neg = at::sigmoid(scores.gather(1, neg_t)).view(-1);
  return at::clamp(margin + neg - pos, 0);
}

std::shared_ptr<TaskModelImpl> MakeReModel(const UniterConfig& config, int mlp) {
  if (mlp != 1 && mlp != 2) throw UsageError("mlp must be 1 or 2 (UNITER's RE head), not " + std::to_string(mlp));
  return std::make_shared<ReModelImpl>(config, mlp);
}

}  // namespace uniter::trainer
