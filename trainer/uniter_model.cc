#include "trainer/internal/uniter_model.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <atomic>
#include <cmath>

#include "common/error.h"

namespace uniter::trainer {

// layer.py's x·½(1+erf(x/√2)). In fp32 as ATen's fused exact GELU: the same
// math to an ulp or two (its x·(1/√2) for x/√2), one pass forward and one
// backward instead of five ops each way. In bf16/fp16 (autocast) op by op as
// UNITER: the fused kernel rounds once where UNITER rounds every op, which
// moves the grads past the bf16 parity test's tolerance.
at::Tensor Gelu(const at::Tensor& x) {
  if (x.scalar_type() == at::kFloat) return at::gelu(x);
  return x * 0.5 * (1.0 + at::erf(x / std::sqrt(2.0)));
}

at::Tensor ApplyLinear(const torch::nn::Linear& linear, const at::Tensor& x) {
  return at::linear(x, linear->weight, linear->bias);
}

at::Tensor Activation(const std::string& name, const at::Tensor& x) {
  if (name == "gelu") return Gelu(x);
  if (name == "relu") return at::relu(x);
  if (name == "swish") return x * at::sigmoid(x);
  throw UsageError("unknown activation '" + name + "'");
}

torch::nn::LayerNorm MakeLayerNorm(int64_t size) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({size}).eps(1e-12));
}

void InitUniterWeights(torch::nn::Module& root, double std) {
  at::NoGradGuard no_grad;
  // include_self=false: constructors call this before the root is in a shared_ptr.
  for (const auto& m : root.modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::LinearImpl>()) {
      linear->weight.normal_(0.0, std);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* emb = m->as<torch::nn::EmbeddingImpl>()) {
      emb->weight.normal_(0.0, std);
    } else if (auto* ln = m->as<torch::nn::LayerNormImpl>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
}

namespace {

std::atomic<AttentionKernel> attention_kernel{AttentionKernel::kAuto};

#if TORCH_VERSION_MAJOR >= 2
// UNITER's attention as one fused op: the same additive mask (broadcast over
// heads and query rows; in q's dtype, which the fused kernels need: -10000
// stays -10000 in fp16, -9984 in bf16, both exp() to 0), the same 1/√d scale
// (SDPA's default), dropout on the probabilities in training only.
at::Tensor FusedAttend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& additive_mask, double dropout_p, bool training) {
  return at::scaled_dot_product_attention(q, k, v, additive_mask.to(q.scalar_type()), training ? dropout_p : 0.0,
                                          /*is_causal=*/false);
}
#endif

// `rows` [n, w] placed at `index` (ascending, distinct) of a zeroed [total, w]
// (index_copy's backward hands `rows` just their own grads); no copy when
// `index` is every row, as in a batch without padding.
at::Tensor Unpack(const at::Tensor& rows, const at::Tensor& index, int64_t total) {
  if (rows.size(0) == total) return rows;
  return at::zeros({total, rows.size(1)}, rows.options()).index_copy(0, index, rows);
}

// The rows `index` (ascending, distinct) of [total, w] `x`; `x` itself when that is every row.
at::Tensor Pack(const at::Tensor& x, const at::Tensor& index) {
  return index.size(0) == x.size(0) ? x : x.index_select(0, index);
}

}  // namespace

bool HasFusedAttention() { return TORCH_VERSION_MAJOR >= 2; }

void SetAttentionKernel(AttentionKernel kernel) {
  if (kernel == AttentionKernel::kFused && !HasFusedAttention())
    throw UsageError("fused attention needs LibTorch >= 2 (at::scaled_dot_product_attention)");
  attention_kernel.store(kernel);
}

at::Tensor Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& additive_mask, double dropout_p, bool training) {
#if TORCH_VERSION_MAJOR >= 2
  // Fused kernels pay on the GPU; the CPU keeps UNITER's explicit order of
  // operations so results match the reference bit for bit where they can.
  const AttentionKernel kernel = attention_kernel.load();
  if (kernel == AttentionKernel::kFused || (kernel == AttentionKernel::kAuto && q.is_cuda()))
    return FusedAttend(q, k, v, additive_mask, dropout_p, training);
#endif
  // q·kᵀ/√d + mask as one baddbmm (scale and mask applied in the GEMM's
  // epilogue); for d = 64 the scale 1/8 is exact, so this is UNITER's
  // matmul → div → add to the bit where the GEMM sums alike.
  const int64_t b = q.size(0), h = q.size(1), lq = q.size(2), lk = k.size(2), d = q.size(3);
  const at::Tensor mask = additive_mask.expand({b, h, lq, lk}).reshape({b * h, lq, lk});
  at::Tensor scores = at::baddbmm(mask, q.reshape({b * h, lq, d}), k.reshape({b * h, lk, d}).transpose(1, 2), 1.0,
                                  1.0 / std::sqrt(static_cast<double>(d)));
  at::Tensor probs = at::dropout(at::softmax(scores, -1), dropout_p, training);
  return at::bmm(probs, v.reshape({b * h, lk, d})).view({b, h, lq, d});
}

// --- embeddings ---------------------------------------------------------------

TextEmbeddingsImpl::TextEmbeddingsImpl(const UniterConfig& c) {
  word_embeddings = register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(0)));
  position_embeddings =
      register_module("position_embeddings", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(c.hidden_size));
  dropout = register_module("dropout", torch::nn::Dropout(c.hidden_dropout_prob));
}

at::Tensor TextEmbeddingsImpl::forward(const at::Tensor& input_ids, const at::Tensor& position_ids,
                                       const at::Tensor& token_type_ids) {
  const at::Tensor types = token_type_ids.defined() ? token_type_ids : at::zeros_like(input_ids);
  at::Tensor emb = word_embeddings(input_ids) + position_embeddings(position_ids) + token_type_embeddings(types);
  return dropout(LayerNorm(emb));
}

void TextEmbeddingsImpl::ExpandTypeEmbedding(int64_t rows, double init_std) {
  const at::Tensor old = token_type_embeddings->weight;
  const int64_t old_rows = old.size(0);
  auto fresh = torch::nn::Embedding(rows, old.size(1));
  fresh->to(old.device(), old.scalar_type());
  at::NoGradGuard no_grad;
  fresh->weight.normal_(0.0, init_std);  // new_emb.apply(init_weights); every row is then overwritten
  for (int64_t i = 0; i < rows; ++i) fresh->weight[i].copy_(old[std::min(i, old_rows - 1)]);
  token_type_embeddings = replace_module("token_type_embeddings", fresh);
}

ImageEmbeddingsImpl::ImageEmbeddingsImpl(const UniterConfig& c, int64_t img_dim) {
  img_linear = register_module("img_linear", torch::nn::Linear(img_dim, c.hidden_size));
  img_layer_norm = register_module("img_layer_norm", MakeLayerNorm(c.hidden_size));
  pos_layer_norm = register_module("pos_layer_norm", MakeLayerNorm(c.hidden_size));
  pos_linear = register_module("pos_linear", torch::nn::Linear(7, c.hidden_size));
  mask_embedding = register_module(
      "mask_embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(2, img_dim).padding_idx(0)));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(c.hidden_size));
  dropout = register_module("dropout", torch::nn::Dropout(c.hidden_dropout_prob));
}

at::Tensor ImageEmbeddingsImpl::forward(const at::Tensor& img_feat, const at::Tensor& img_pos_feat,
                                        const at::Tensor& type_embeddings, const at::Tensor& img_masks) {
  at::Tensor feat = img_feat;
  if (img_masks.defined()) {
    {
      at::NoGradGuard no_grad;  // UNITER zeroes row 0 in place on every masked call
      mask_embedding->weight[0].fill_(0);
    }
    feat = feat + mask_embedding(img_masks.to(at::kLong));
  }
  at::Tensor im = img_layer_norm(ApplyLinear(img_linear, feat));
  at::Tensor pos = pos_layer_norm(ApplyLinear(pos_linear, img_pos_feat));
  return dropout(LayerNorm(im + pos + type_embeddings));
}

// --- encoder --------------------------------------------------------------------

SelfAttentionImpl::SelfAttentionImpl(const UniterConfig& c)
    : heads_(c.num_attention_heads), head_size_(c.hidden_size / c.num_attention_heads) {
  query = register_module("query", torch::nn::Linear(c.hidden_size, c.hidden_size));
  key = register_module("key", torch::nn::Linear(c.hidden_size, c.hidden_size));
  value = register_module("value", torch::nn::Linear(c.hidden_size, c.hidden_size));
  dropout = register_module("dropout", torch::nn::Dropout(c.attention_probs_dropout_prob));
}

at::Tensor SelfAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows,
                                      const at::Tensor& keep) {
  const int64_t b = rows.batch, l = rows.length, n = b * l;
  // q, k and v in one GEMM over the Linears' weights side by side (the
  // parameters and their keys stay UNITER's). unbind, not qkv[i]: its backward
  // stacks the grads once, where selects would each scatter into a zeroed
  // full-size tensor.
  auto heads = [&](const at::Tensor& packed, int64_t parts) {  // [T, parts·H] → parts × [B, heads, L, d]
    return Unpack(packed, rows.valid, n).view({b, l, parts, heads_, head_size_}).permute({2, 0, 3, 1, 4}).unbind(0);
  };
  at::Tensor q, k, v;
  if (!keep.defined()) {
    const auto qkv = heads(at::linear(hidden, at::cat({query->weight, key->weight, value->weight}),
                                      at::cat({query->bias, key->bias, value->bias})),
                           3);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {  // the last layer: queries only for the rows a head reads
    const auto kv =
        heads(at::linear(hidden, at::cat({key->weight, value->weight}), at::cat({key->bias, value->bias})), 2);
    k = kv[0], v = kv[1];
    q = Unpack(at::linear(Pack(hidden, keep), query->weight, query->bias), rows.out, n)
            .view({b, l, heads_, head_size_})
            .permute({0, 2, 1, 3});
  }
  const at::Tensor ctx = Attend(q, k, v, ext_mask, dropout->options.p(), is_training());
  return Pack(ctx.permute({0, 2, 1, 3}).reshape({n, heads_ * head_size_}), keep.defined() ? rows.out : rows.valid);
}

ResidualOutputImpl::ResidualOutputImpl(int64_t in, int64_t hidden, double dropout_p) {
  dense = register_module("dense", torch::nn::Linear(in, hidden));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(hidden));
  dropout = register_module("dropout", torch::nn::Dropout(dropout_p));
}

at::Tensor ResidualOutputImpl::forward(const at::Tensor& x, const at::Tensor& residual) {
  return LayerNorm(dropout(ApplyLinear(dense, x)) + residual);
}

AttentionImpl::AttentionImpl(const UniterConfig& c) {
  self = register_module("self", SelfAttention(c));
  output = register_module("output", ResidualOutput(c.hidden_size, c.hidden_size, c.hidden_dropout_prob));
}

at::Tensor AttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows,
                                  const at::Tensor& keep) {
  return output(self(hidden, ext_mask, rows, keep), keep.defined() ? Pack(hidden, keep) : hidden);
}

IntermediateImpl::IntermediateImpl(const UniterConfig& c) : act_(c.hidden_act) {
  dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.intermediate_size));
}

at::Tensor IntermediateImpl::forward(const at::Tensor& x) { return Activation(act_, ApplyLinear(dense, x)); }

LayerImpl::LayerImpl(const UniterConfig& c) {
  attention = register_module("attention", Attention(c));
  intermediate = register_module("intermediate", Intermediate(c));
  output = register_module("output", ResidualOutput(c.intermediate_size, c.hidden_size, c.hidden_dropout_prob));
}

at::Tensor LayerImpl::forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows,
                              const at::Tensor& keep) {
  at::Tensor attn = attention(hidden, ext_mask, rows, keep);
  return output(intermediate(attn), attn);
}

EncoderImpl::EncoderImpl(const UniterConfig& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(Layer(c));
}

at::Tensor EncoderImpl::forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows) {
  if (layer->size() == 0) return rows.keep.defined() ? Pack(hidden, rows.keep) : hidden;
  at::Tensor h = hidden;
  for (size_t i = 0; i < layer->size(); ++i)
    h = layer->ptr<LayerImpl>(i)->forward(h, ext_mask, rows, i + 1 == layer->size() ? rows.keep : at::Tensor());
  return h;
}

PoolerImpl::PoolerImpl(const UniterConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
}

at::Tensor PoolerImpl::forward(const at::Tensor& sequence) { return at::tanh(ApplyLinear(dense, sequence.select(1, 0))); }

// --- the model --------------------------------------------------------------------

UniterModelImpl::UniterModelImpl(const UniterConfig& c, int64_t img_dim) : config_(c) {
  embeddings = register_module("embeddings", TextEmbeddings(c));
  img_embeddings = register_module("img_embeddings", ImageEmbeddings(c, img_dim));
  encoder = register_module("encoder", Encoder(c));
  pooler = register_module("pooler", Pooler(c));
  InitUniterWeights(*this, c.initializer_range);
}

at::Tensor UniterModelImpl::Embed(const Inputs& in) {
  auto image = [&] {
    const at::Tensor types =
        in.img_type_ids.defined() ? in.img_type_ids : at::ones_like(in.img_feat.select(2, 0), at::kLong);
    return img_embeddings(in.img_feat, in.img_pos_feat, embeddings->token_type_embeddings(types), in.img_masks);
  };
  if (!in.input_ids.defined()) return image();
  at::Tensor txt = embeddings(in.input_ids, in.position_ids, in.txt_type_ids);
  if (!in.img_feat.defined()) return txt;
  // Align text and image rows back to the most compact layout (gather_index).
  const at::Tensor index = in.gather_index.unsqueeze(-1).expand({-1, -1, config_.hidden_size});
  return at::gather(at::cat({txt, image()}, 1), 1, index);
}

at::Tensor FirstRows(const at::Tensor& attn_masks) {
  at::Tensor rows = at::zeros(attn_masks.sizes(), attn_masks.options().dtype(at::kBool));
  rows.select(1, 0).fill_(true);
  return rows;
}

at::Tensor UniterModelImpl::forward(const Inputs& in) {
  const at::ScalarType dtype = embeddings->word_embeddings->weight.scalar_type();
  at::Tensor ext = in.attn_masks.unsqueeze(1).unsqueeze(2).to(dtype);
  ext = (1.0 - ext) * -10000.0;
  const at::Tensor x = Embed(in);
  // Padding rows (exp(−10000) = 0 keeps them out of every valid row's
  // attention) and, in the last layer, rows no head reads change nothing the
  // caller sees: leave them out of the GEMMs.
  const int64_t b = x.size(0), l = x.size(1), h = x.size(2);
  PackedRows rows;
  rows.batch = b, rows.length = l;
  rows.valid = in.attn_masks.ne(0).reshape({-1}).nonzero().squeeze(1);
  rows.out = rows.valid;
  if (in.output_rows.defined()) {
    rows.keep = in.output_rows.to(at::kBool).reshape({-1}).index_select(0, rows.valid).nonzero().squeeze(1);
    rows.out = rows.valid.index_select(0, rows.keep);
  }
  return Unpack(encoder(Pack(x.reshape({b * l, h}), rows.valid), ext, rows), rows.out, b * l).view({b, l, h});
}

}  // namespace uniter::trainer
