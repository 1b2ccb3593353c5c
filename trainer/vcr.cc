// model/vcr.py: UniterForVisualCommonsenseReasoning (a 2-way score per
// choice row) and train_vcr.py's embedding expansions and checkpoint loads.
#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>

#include "common/error.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/task_model.h"

namespace uniter::trainer {
namespace {

constexpr int64_t kVcrTypeRows = 4;
constexpr int64_t kVcrSpecialTokens = 81;  // train_vcr.py's NUM_SPECIAL_TOKENS (person_0..80)
const char* const kTypeKey = "uniter.embeddings.token_type_embeddings.weight";
const char* const kWordKey = "uniter.embeddings.word_embeddings.weight";

class VcrModelImpl : public TaskModelImpl {
 public:
  explicit VcrModelImpl(const UniterConfig& c) : TaskModelImpl(c) {
    const int64_t h = c.hidden_size;
    vcr_output_ = register_module("vcr_output", torch::nn::Sequential(torch::nn::Linear(h, 2 * h), torch::nn::ReLU(),
                                                                      MakeLayerNorm(2 * h), torch::nn::Linear(2 * h, 2)));
    InitUniterWeights(*this, c.initializer_range);
    InitTypeEmbedding(c);
    InitWordEmbedding(c);
  }

  // [rows, 2]: one row per (question, choice); eval uses column 1.
  at::Tensor Scores(const Batch& b) override {
    // The VCR forward passes txt_type_ids; images keep the default type 1.
    UniterModelImpl::Inputs in{b.input_ids, b.position_ids, b.img_feat, b.img_pos_feat,
                               b.attn_masks, b.gather_index, {}, b.txt_type_ids, {}, FirstRows(b.attn_masks)};
    return vcr_output_->forward(uniter->pooler(uniter(in)));
  }
  at::Tensor Loss(const at::Tensor& scores, const Batch& b) const override {
    return at::cross_entropy_loss(scores, b.targets, {}, at::Reduction::None);
  }
  at::Tensor TrainLoss(const at::Tensor& loss, const Batch&) const override { return loss.mean(); }

 private:
  // init_type_embedding: Embedding(4, H) drawn N(0, σ), rows [t0, t1, t0, t0].
  void InitTypeEmbedding(const UniterConfig& c) {
    auto& emb = *uniter->embeddings;
    const at::Tensor old = emb.token_type_embeddings->weight;
    auto fresh = torch::nn::Embedding(kVcrTypeRows, c.hidden_size);
    at::NoGradGuard no_grad;
    fresh->weight.normal_(0.0, c.initializer_range);
    const int64_t src[kVcrTypeRows] = {0, 1, 0, 0};
    for (int64_t i = 0; i < kVcrTypeRows; ++i) fresh->weight[i].copy_(old[std::min(src[i], old.size(0) - 1)]);
    emb.token_type_embeddings = emb.replace_module("token_type_embeddings", fresh);
  }
  // init_word_embedding: Embedding(V + 81, H) without padding_idx, N(0, σ), the first V rows copied.
  void InitWordEmbedding(const UniterConfig& c) {
    auto& emb = *uniter->embeddings;
    const at::Tensor old = emb.word_embeddings->weight;
    auto fresh = torch::nn::Embedding(old.size(0) + kVcrSpecialTokens, c.hidden_size);
    at::NoGradGuard no_grad;
    fresh->weight.normal_(0.0, c.initializer_range);
    fresh->weight.slice(0, 0, old.size(0)).copy_(old);
    emb.word_embeddings = emb.replace_module("word_embeddings", fresh);
  }

  torch::nn::Sequential vcr_output_{nullptr};
};

}  // namespace

std::shared_ptr<TaskModelImpl> MakeVcrModel(const UniterConfig& config) {
  return std::make_shared<VcrModelImpl>(config);
}

LoadReport LoadVcrCheckpoint(TaskModelImpl& model, const std::string& path, bool from_pretrain) {
  StateDict state = ReadStateDict(path);
  if (from_pretrain) {
    auto params = model.named_parameters();
    for (auto& [key, t] : state) {
      if (key == kTypeKey && t.dim() == 2 && t.size(0) == 2) {
        t = at::stack({t[0], t[1], t[0], t[0]});
      } else if (key == kWordKey && t.dim() == 2 && params.contains(kWordKey) &&
                 t.size(0) + kVcrSpecialTokens == params[kWordKey].size(0)) {
        // The expansion's new rows are the model's own draws (init_word_embedding after the load).
        t = at::cat({t.to(at::kFloat), params[kWordKey].detach().slice(0, t.size(0)).to(at::kFloat)}, 0);
      }
    }
  }
  return LoadStateDict(model, std::move(state), path);
}

}  // namespace uniter::trainer
