#include "trainer/internal/pretrain_model.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/functional.h>

#include <algorithm>

#include "common/error.h"
#include "trainer/internal/ot.h"

namespace uniter::trainer {

PretrainTask ParsePretrainTask(const std::string& name) {
  if (name.rfind("mlm", 0) == 0) return PretrainTask::kMlm;
  if (name.rfind("mrfr", 0) == 0) return PretrainTask::kMrfr;
  if (name.rfind("mrc", 0) == 0) return name.find("kl") != std::string::npos ? PretrainTask::kMrcKl : PretrainTask::kMrc;
  if (name.rfind("itm", 0) == 0) return PretrainTask::kItm;
  throw UsageError("unknown pretraining task '" + name + "' (mlm, mrfr, mrc, mrc-kl, itm)");
}

const char* PretrainTaskName(PretrainTask task) {
  switch (task) {
    case PretrainTask::kMlm: return "mlm";
    case PretrainTask::kMrfr: return "mrfr";
    case PretrainTask::kMrc: return "mrc";
    case PretrainTask::kMrcKl: return "mrc-kl";
    case PretrainTask::kItm: return "itm";
  }
  return "?";
}

namespace {

torch::nn::Functional GeluLayer() {
  return torch::nn::Functional([](const at::Tensor& x) { return Gelu(x); });
}

// _compute_masked_hidden: the rows of hidden [B, L, H] where mask [B, L] holds.
at::Tensor MaskedRows(const at::Tensor& hidden, const at::Tensor& mask) {
  return hidden.index({mask.to(at::kBool)}).contiguous().view({-1, hidden.size(-1)});
}

}  // namespace

PretrainModelImpl::PretrainModelImpl(const UniterConfig& c, int64_t img_dim, int64_t img_label_dim)
    : act_(c.hidden_act) {
  const int64_t h = c.hidden_size;
  uniter = register_module("uniter", UniterModel(c, img_dim));

  register_module("cls", MakeMlmHead(h));

  auto regress = register_module("feat_regress", std::make_shared<torch::nn::Module>());
  regress_net_ = regress->register_module("net", torch::nn::Sequential(torch::nn::Linear(h, h), GeluLayer(),
                                                                       MakeLayerNorm(h)));
  regress_weight_ = regress->register_parameter("weight", uniter->img_embeddings->img_linear->weight);
  regress_bias_ = regress->register_parameter("bias", at::zeros({img_dim}));

  auto classifier = register_module("region_classifier", std::make_shared<torch::nn::Module>());
  region_classifier_ = classifier->register_module(
      "net", torch::nn::Sequential(torch::nn::Linear(h, h), GeluLayer(), MakeLayerNorm(h),
                                   torch::nn::Linear(h, img_label_dim)));
  itm_output_ = register_module("itm_output", torch::nn::Linear(h, 2));
  // self.apply(init_weights): the tied tensors are drawn as the embedding and
  // img_linear they are; the two free biases stay zero.
  InitUniterWeights(*this, c.initializer_range);
}

// BertOnlyMLMHead(config, word_embeddings.weight): transform (dense, act,
// LayerNorm) in LibTorch's default init (= torch's), the decoder tied to the
// word embeddings, a zero bias of their size.
std::shared_ptr<torch::nn::Module> PretrainModelImpl::MakeMlmHead(int64_t h) {
  auto cls = std::make_shared<torch::nn::Module>();
  auto predictions = cls->register_module("predictions", std::make_shared<torch::nn::Module>());
  predictions_ = predictions.get();
  auto transform = predictions->register_module("transform", std::make_shared<torch::nn::Module>());
  transform_dense_ = transform->register_module("dense", torch::nn::Linear(h, h));
  transform_norm_ = transform->register_module("LayerNorm", MakeLayerNorm(h));
  const at::Tensor words = uniter->embeddings->word_embeddings->weight;
  // nn.Linear(H, V) draws its own weight before the tie replaces it: draw as many.
  auto decoder = predictions->register_module("decoder", std::make_shared<torch::nn::Module>());
  torch::nn::Linear(torch::nn::LinearOptions(h, words.size(0)).bias(false));
  decoder_weight_ = decoder->register_parameter("weight", words);
  mlm_bias_ = predictions->register_parameter("bias", at::zeros({words.size(0)}));
  return cls;
}

void PretrainModelImpl::ExpandForVcr(int64_t num_special_tokens) {
  auto& emb = *uniter->embeddings;
  const UniterConfig& c = uniter->config();
  at::NoGradGuard no_grad;
  // init_type_embedding: Embedding(4, H) (its N(0, 1) then init_weights' N(0, σ) drawn), rows [t0, t1, t0, t0].
  const at::Tensor old_types = emb.token_type_embeddings->weight.detach();
  auto types = torch::nn::Embedding(4, c.hidden_size);
  types->weight.normal_(0.0, c.initializer_range);
  const int64_t src[4] = {0, 1, 0, 0};
  for (int64_t i = 0; i < 4; ++i) types->weight[i].copy_(old_types[std::min(src[i], old_types.size(0) - 1)]);
  emb.token_type_embeddings = emb.replace_module("token_type_embeddings", types);
  // init_word_embedding: Embedding(V + n, H) drawn so, the first V rows copied; a new cls head tied to it.
  const at::Tensor old_words = emb.word_embeddings->weight.detach();
  auto words = torch::nn::Embedding(old_words.size(0) + num_special_tokens, c.hidden_size);
  words->weight.normal_(0.0, c.initializer_range);
  words->weight.slice(0, 0, old_words.size(0)).copy_(old_words);
  emb.word_embeddings = emb.replace_module("word_embeddings", words);
  replace_module("cls", MakeMlmHead(c.hidden_size));
}

at::Tensor PretrainModelImpl::Encode(const PretrainBatch& p, bool mask_regions, const at::Tensor& output_rows) {
  const Batch& b = p.batch;
  // txt_type_ids: VCR's (pretrain_vcr.py passes them), else undefined = zeros.
  UniterModelImpl::Inputs in{b.input_ids,  b.position_ids, b.img_feat, b.img_pos_feat, b.attn_masks, b.gather_index,
                             mask_regions ? b.img_masks : at::Tensor(), b.txt_type_ids, {}, output_rows};
  return uniter(in);
}

// BertOnlyMLMHead on the masked text positions only.
at::Tensor PretrainModelImpl::MlmScores(const PretrainBatch& p) {
  const at::Tensor labelled = p.txt_labels.ne(-1);  // [B, text slots]: the text slots lead every row
  const int64_t pad = p.batch.attn_masks.size(1) - labelled.size(1);
  const at::Tensor seq = Encode(p, false, at::constant_pad_nd(labelled, {0, pad}, 0));
  const at::Tensor txt = seq.slice(1, 0, p.batch.input_ids.size(1));
  const at::Tensor masked = MaskedRows(txt, labelled);
  const at::Tensor t = transform_norm_(Activation(act_, transform_dense_(masked)));
  return at::linear(t, decoder_weight_) + mlm_bias_;
}

// The encoder with masked regions, at the masked regions' slots.
at::Tensor PretrainModelImpl::RegionHidden(const PretrainBatch& p) {
  return MaskedRows(Encode(p, true, p.img_mask_tgt.to(at::kBool)), p.img_mask_tgt);
}

at::Tensor PretrainModelImpl::ItmScores(const PretrainBatch& p, PretrainOutput* ot) {
  const Batch& b = p.batch;
  const bool with_ot = ot != nullptr && p.ot_scatter.defined();  // OT reads every row
  const at::Tensor seq = Encode(p, false, with_ot ? at::Tensor() : FirstRows(b.attn_masks));
  const at::Tensor scores = itm_output_(uniter->pooler(seq));
  if (!with_ot) return scores;
  // Scatter the joint sequence back to [text slots | image slots] (itm_ot_collate's ot_scatter).
  const int64_t batch = seq.size(0), tl = b.input_ids.size(1), il = b.img_feat.size(1);
  const int64_t max_l = std::max(p.scatter_max + 1, tl + il);
  const at::Tensor index = p.ot_scatter.unsqueeze(-1).expand_as(seq);
  const at::Tensor ctx = at::zeros({batch, max_l, seq.size(2)}, seq.options()).scatter(1, index, seq);
  const at::Tensor txt_emb = ctx.slice(1, 0, tl);
  const at::Tensor img_emb = ctx.slice(1, tl, tl + il);
  // UNITER runs OT in fp32 "for stability".
  const at::Tensor dist = OptimalTransportDist(txt_emb.to(at::kFloat), img_emb.to(at::kFloat),
                                               p.txt_pad.to(at::kBool), p.img_pad.to(at::kBool))
                              .to(txt_emb.scalar_type());
  ot->ot_pos = dist.masked_select(b.targets.eq(1));
  ot->ot_neg = dist.masked_select(b.targets.eq(0));
  return scores;
}

at::Tensor PretrainModelImpl::Scores(PretrainTask task, const PretrainBatch& p) {
  switch (task) {
    case PretrainTask::kMlm:
      return MlmScores(p);
    case PretrainTask::kMrfr:
      return at::linear(regress_net_->forward(RegionHidden(p)), regress_weight_.t(), regress_bias_);
    case PretrainTask::kMrc:
    case PretrainTask::kMrcKl:
      return region_classifier_->forward(RegionHidden(p));
    case PretrainTask::kItm:
      return ItmScores(p, nullptr);
  }
  throw UsageError("unknown pretraining task");
}

PretrainOutput PretrainModelImpl::Loss(PretrainTask task, const PretrainBatch& p) {
  PretrainOutput out;
  switch (task) {
    case PretrainTask::kMlm:
      out.loss = at::cross_entropy_loss(MlmScores(p), p.txt_labels.index({p.txt_labels.ne(-1)}), {},
                                        at::Reduction::None);
      break;
    case PretrainTask::kMrfr:
      out.loss = at::mse_loss(Scores(task, p), p.feat_targets, at::Reduction::None);
      break;
    case PretrainTask::kMrcKl:
      out.loss = at::kl_div(at::log_softmax(Scores(task, p), -1), p.label_targets, at::Reduction::None);
      break;
    case PretrainTask::kMrc: {
      // The detector's most likely class, background excluded, is the target.
      const at::Tensor target = std::get<1>(p.label_targets.slice(1, 1).max(-1)) + 1;
      out.loss = at::cross_entropy_loss(Scores(task, p), target, {}, at::Reduction::None, /*ignore_index=*/0);
      break;
    }
    case PretrainTask::kItm:
      out.loss = at::cross_entropy_loss(ItmScores(p, &out), p.batch.targets, {}, at::Reduction::None);
      break;
  }
  return out;
}

at::Tensor PretrainModelImpl::TrainLoss(PretrainTask task, const PretrainOutput& out, double itm_ot_lambda) {
  if (task != PretrainTask::kItm || !out.ot_pos.defined()) return out.loss.mean();
  const at::Tensor ot = (out.ot_pos.sum() - out.ot_neg.sum()) / static_cast<double>(out.ot_pos.size(0) +
                                                                                     out.ot_neg.size(0));
  return out.loss.mean() + itm_ot_lambda * ot;
}

}  // namespace uniter::trainer
