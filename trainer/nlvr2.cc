// model/nlvr2.py: UniterForNlvr2Paired, ...Triplet, ...PairedAttn and the
// MultiheadAttention / AttentionPool the last one uses.
#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>

#include <cmath>

#include "common/error.h"
#include "trainer/internal/task_model.h"

namespace uniter::trainer {

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout)
    : embed_dim_(embed_dim), heads_(num_heads), dropout_(dropout) {
  if (embed_dim % num_heads != 0) throw UsageError("embed_dim must be divisible by num_heads");
  in_proj_weight = register_parameter("in_proj_weight", at::empty({3 * embed_dim, embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", at::empty({3 * embed_dim}));
  out_proj = register_module("out_proj", torch::nn::Linear(embed_dim, embed_dim));
  torch::nn::init::xavier_uniform_(in_proj_weight);
  torch::nn::init::constant_(in_proj_bias, 0.0);
  torch::nn::init::constant_(out_proj->bias, 0.0);
}

at::Tensor MultiheadAttentionImpl::forward(const at::Tensor& query, const at::Tensor& key_value,
                                           const at::Tensor& key_padding_mask) {
  const int64_t tgt_len = query.size(0), bsz = query.size(1), head_dim = embed_dim_ / heads_;
  const double scaling = std::pow(static_cast<double>(head_dim), -0.5);
  // attention.py's kv_same branch: q from the first third, k and v from the rest.
  at::Tensor q = at::linear(query, in_proj_weight.slice(0, 0, embed_dim_), in_proj_bias.slice(0, 0, embed_dim_));
  auto kv = at::linear(key_value, in_proj_weight.slice(0, embed_dim_), in_proj_bias.slice(0, embed_dim_)).chunk(2, -1);
  q = q * scaling;
  auto heads_first = [&](const at::Tensor& x) {
    return x.contiguous().view({-1, bsz * heads_, head_dim}).transpose(0, 1);
  };
  q = heads_first(q);
  const at::Tensor k = heads_first(kv[0]), v = heads_first(kv[1]);
  const int64_t src_len = k.size(1);
  at::Tensor w = at::bmm(q, k.transpose(1, 2));
  if (key_padding_mask.defined()) {
    w = w.view({bsz, heads_, tgt_len, src_len})
            .masked_fill(key_padding_mask.unsqueeze(1).unsqueeze(2), -std::numeric_limits<double>::infinity())
            .view({bsz * heads_, tgt_len, src_len});
  }
  w = at::dropout(at::softmax(w, -1), dropout_, is_training());
  at::Tensor out = at::bmm(w, v).transpose(0, 1).contiguous().view({tgt_len, bsz, embed_dim_});
  return out_proj(out);
}

namespace {

// pooled: the head reads only position 0 (pair, triplet).
UniterModelImpl::Inputs Nlvr2Inputs(const Batch& b, bool pooled) {
  // NLVR2 forwards pass img_type_ids (1/2 per image) but not txt_type_ids.
  return {b.input_ids, b.position_ids, b.img_feat, b.img_pos_feat, b.attn_masks, b.gather_index,
          {}, {}, b.img_type_ids, pooled ? FirstRows(b.attn_masks) : at::Tensor()};
}

class Nlvr2ModelImpl : public TaskModelImpl {
 public:
  using TaskModelImpl::TaskModelImpl;
  at::Tensor Loss(const at::Tensor& scores, const Batch& b) const override {
    return at::cross_entropy_loss(scores, b.targets, {}, at::Reduction::None);
  }
  at::Tensor TrainLoss(const at::Tensor& loss, const Batch&) const override { return loss.mean(); }
  int64_t ExpandedTypeRows() const override { return 3; }

 protected:
  // The end of every NLVR2 constructor: init_weights over the whole model, then
  // train_nlvr2.py's init_type_embedding ([t0, t1, t1]).
  void Finish(const UniterConfig& c) {
    InitUniterWeights(*this, c.initializer_range);
    uniter->embeddings->ExpandTypeEmbedding(3, c.initializer_range);
  }
};

class PairedImpl : public Nlvr2ModelImpl {
 public:
  explicit PairedImpl(const UniterConfig& c) : Nlvr2ModelImpl(c) {
    nlvr2_output_ = register_module("nlvr2_output", torch::nn::Linear(2 * c.hidden_size, 2));
    Finish(c);
  }
  at::Tensor Scores(const Batch& b) override {
    at::Tensor pooled = uniter->pooler(uniter(Nlvr2Inputs(b, true)));
    return nlvr2_output_(pooled.contiguous().view({pooled.size(0) / 2, -1}));  // CLS of the pair
  }

 private:
  torch::nn::Linear nlvr2_output_{nullptr};
};

class TripletImpl : public Nlvr2ModelImpl {
 public:
  explicit TripletImpl(const UniterConfig& c) : Nlvr2ModelImpl(c) {
    nlvr2_output_ = register_module("nlvr2_output", torch::nn::Linear(c.hidden_size, 2));
    Finish(c);
  }
  at::Tensor Scores(const Batch& b) override { return nlvr2_output_(uniter->pooler(uniter(Nlvr2Inputs(b, true)))); }

 private:
  torch::nn::Linear nlvr2_output_{nullptr};
};

class PairedAttnImpl : public Nlvr2ModelImpl {
 public:
  explicit PairedAttnImpl(const UniterConfig& c) : Nlvr2ModelImpl(c) {
    const int64_t h = c.hidden_size;
    attn1_ = register_module("attn1", MultiheadAttention(h, c.num_attention_heads, c.attention_probs_dropout_prob));
    attn2_ = register_module("attn2", MultiheadAttention(h, c.num_attention_heads, c.attention_probs_dropout_prob));
    fc_ = register_module("fc", torch::nn::Sequential(torch::nn::Linear(2 * h, h), torch::nn::ReLU(),
                                                      torch::nn::Dropout(c.hidden_dropout_prob)));
    // AttentionPool: its fc and dropout live in a child named attn_pool.
    attn_pool_ = register_module("attn_pool", std::make_shared<torch::nn::Module>());
    pool_fc_ = attn_pool_->register_module("fc", torch::nn::Sequential(torch::nn::Linear(h, 1), torch::nn::ReLU()));
    pool_dropout_ = attn_pool_->register_module("dropout", torch::nn::Dropout(c.attention_probs_dropout_prob));
    nlvr2_output_ = register_module("nlvr2_output", torch::nn::Linear(2 * h, 2));
    Finish(c);  // re-inits out_proj N(0, σ) and keeps in_proj's xavier, as UNITER's apply does
  }

  at::Tensor Scores(const Batch& b) override {
    at::Tensor seq = uniter(Nlvr2Inputs(b, false));
    const int64_t bs = seq.size(0), tl = seq.size(1), d = seq.size(2);
    auto halves = seq.contiguous().view({bs / 2, tl * 2, d}).chunk(2, 1);
    auto masks = (b.attn_masks == 0).contiguous().view({bs / 2, tl * 2}).chunk(2, 1);
    at::Tensor left = halves[0].transpose(0, 1), right = halves[1].transpose(0, 1);
    at::Tensor l2r = attn1_(left, right, masks[1]);
    at::Tensor r2l = attn2_(right, left, masks[0]);
    left = Fc(at::cat({l2r, left}, -1)).transpose(0, 1);
    right = Fc(at::cat({r2l, right}, -1)).transpose(0, 1);
    return nlvr2_output_(at::cat({Pool(left, masks[0]), Pool(right, masks[1])}, -1));
  }

 private:
  // fc = Sequential(Linear, ReLU, Dropout), its Linear as one addmm (ApplyLinear).
  at::Tensor Fc(const at::Tensor& x) {
    const auto& linear = fc_->ptr<torch::nn::LinearImpl>(0);
    return fc_[2]->as<torch::nn::Dropout>()->forward(at::relu(at::linear(x, linear->weight, linear->bias)));
  }

  // AttentionPool.forward: ReLU(Linear(H,1)) scores, pads −1e4, softmax, dropout, Σ w·x.
  at::Tensor Pool(const at::Tensor& x, const at::Tensor& pad) {
    at::Tensor score = pool_fc_->forward(x).squeeze(-1);
    score = score + pad.to(x.scalar_type()) * -1e4;
    at::Tensor w = pool_dropout_(at::softmax(score, 1));
    return w.unsqueeze(1).matmul(x).squeeze(1);
  }

  MultiheadAttention attn1_{nullptr}, attn2_{nullptr};
  torch::nn::Sequential fc_{nullptr}, pool_fc_{nullptr};
  std::shared_ptr<torch::nn::Module> attn_pool_;
  torch::nn::Dropout pool_dropout_{nullptr};
  torch::nn::Linear nlvr2_output_{nullptr};
};

}  // namespace

std::shared_ptr<TaskModelImpl> MakeNlvr2Model(const UniterConfig& config, const std::string& variant) {
  if (variant == "paired") return std::make_shared<PairedImpl>(config);
  if (variant == "triplet") return std::make_shared<TripletImpl>(config);
  if (variant == "paired-attn") return std::make_shared<PairedAttnImpl>(config);
  throw UsageError("unknown NLVR2 model '" + variant + "' (expected paired, triplet or paired-attn)");
}

}  // namespace uniter::trainer
