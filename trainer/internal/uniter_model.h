// UNITER's encoder as LibTorch modules (model/model.py, model/layer.py),
// registered under UNITER's attribute names so that named_parameters() is
// UNITER's state-dict key list: embeddings.word_embeddings.weight,
// img_embeddings.img_linear.weight, encoder.layer.N.attention.self.query.weight,
// pooler.dense.weight, ... (heads add the `uniter.` prefix).
// Same math and order of operations as UNITER; LayerNorm eps 1e-12 everywhere.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "trainer/config.h"

namespace uniter::trainer {

// x·½(1+erf(x/√2)) (layer.py:gelu).
at::Tensor Gelu(const at::Tensor& x);
// UNITER's ACT2FN: "gelu", "relu" or "swish".
at::Tensor Activation(const std::string& name, const at::Tensor& x);
torch::nn::LayerNorm MakeLayerNorm(int64_t size);
// x·Wᵀ + b through ATen's linear (one addmm with the bias, as PyTorch's
// nn.Linear), not LibTorch 1.13's C++ functional (matmul, then bias add_).
at::Tensor ApplyLinear(const torch::nn::Linear& linear, const at::Tensor& x);

// UNITER's init_weights applied to every submodule of `root`: Linear and
// Embedding weights N(0, std) (padding rows too), Linear biases 0, LayerNorm
// 1/0. Other parameters (the packed in_proj of MultiheadAttention) are kept.
void InitUniterWeights(torch::nn::Module& root, double std);

// softmax(q·kᵀ/√d + mask) → dropout → ·v for q,k,v [B, heads, L, d] and an
// additive mask broadcastable to [B, heads, Lq, Lk]. The explicit form on the
// CPU; LibTorch ≥ 2 runs the fused at::scaled_dot_product_attention on CUDA.
at::Tensor Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& additive_mask, double dropout_p, bool training);

// Which form Attend uses, process-wide: kAuto = fused on CUDA (where LibTorch
// has it), explicit on the CPU; the others force one (tests compare them).
// kFused where LibTorch lacks it (< 2) throws UsageError.
enum class AttentionKernel { kAuto, kExplicit, kFused };
void SetAttentionKernel(AttentionKernel kernel);
// True when this LibTorch has at::scaled_dot_product_attention (≥ 2).
bool HasFusedAttention();

class TextEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit TextEmbeddingsImpl(const UniterConfig& config);
  // token_type_ids undefined = zeros.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& position_ids,
                     const at::Tensor& token_type_ids);
  // NLVR2's init_type_embedding: a new [rows, H] table whose first rows copy
  // the old ones and whose later rows repeat the old last row ([t0,t1,t1]).
  void ExpandTypeEmbedding(int64_t rows, double init_std);

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr},
      token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(TextEmbeddings);

class ImageEmbeddingsImpl : public torch::nn::Module {
 public:
  ImageEmbeddingsImpl(const UniterConfig& config, int64_t img_dim);
  // img_masks undefined = no region masking.
  at::Tensor forward(const at::Tensor& img_feat, const at::Tensor& img_pos_feat,
                     const at::Tensor& type_embeddings, const at::Tensor& img_masks);

  torch::nn::Linear img_linear{nullptr}, pos_linear{nullptr};
  torch::nn::LayerNorm img_layer_norm{nullptr}, pos_layer_norm{nullptr}, LayerNorm{nullptr};
  torch::nn::Embedding mask_embedding{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ImageEmbeddings);

// Which rows of the flattened [B·L] sequence the encoder computes: `valid`
// (attn_mask ≠ 0, ascending) in every layer but the last; the last layer's
// outputs only for `keep` (indices into `valid`; undefined = all of them),
// the rows a head reads. Every layer takes and gives packed [rows, H].
struct PackedRows {
  at::Tensor valid;  // [T] flat indices into B·L
  at::Tensor keep;   // [S] indices into [0, T), or undefined
  at::Tensor out;    // [S] flat indices of the last layer's output rows (valid[keep], or valid)
  int64_t batch = 0, length = 0;
};

class SelfAttentionImpl : public torch::nn::Module {
 public:
  explicit SelfAttentionImpl(const UniterConfig& config);
  // `hidden` [T, H] holds rows.valid's rows; the context of rows `keep`
  // (indices into those T rows; undefined = all) as [S, H]. Keys and values
  // come from every valid row; the padding rows are zeros for the attention.
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows,
                     const at::Tensor& keep);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  int64_t heads_, head_size_;
};
TORCH_MODULE(SelfAttention);

// BertSelfOutput and BertOutput: dense → dropout → LayerNorm(· + residual).
class ResidualOutputImpl : public torch::nn::Module {
 public:
  ResidualOutputImpl(int64_t in, int64_t hidden, double dropout_p);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& residual);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ResidualOutput);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const UniterConfig& config);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows,
                     const at::Tensor& keep);

  SelfAttention self{nullptr};
  ResidualOutput output{nullptr};
};
TORCH_MODULE(Attention);

class IntermediateImpl : public torch::nn::Module {
 public:
  explicit IntermediateImpl(const UniterConfig& config);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Linear dense{nullptr};

 private:
  std::string act_;
};
TORCH_MODULE(Intermediate);

class LayerImpl : public torch::nn::Module {
 public:
  explicit LayerImpl(const UniterConfig& config);
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows,
                     const at::Tensor& keep);

  Attention attention{nullptr};
  Intermediate intermediate{nullptr};
  ResidualOutput output{nullptr};
};
TORCH_MODULE(Layer);

class PoolerImpl : public torch::nn::Module {
 public:
  explicit PoolerImpl(const UniterConfig& config);
  at::Tensor forward(const at::Tensor& sequence);  // tanh(dense(h[:, 0]))

  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(Pooler);

class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const UniterConfig& config);
  // [T, H] rows.valid's rows in; [S, H] rows.out's rows of the last layer out.
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& ext_mask, const PackedRows& rows);

  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(Encoder);

// [B, L] bool, true at position 0 of each row: what the pooler reads.
at::Tensor FirstRows(const at::Tensor& attn_masks);

// UniterModel: embeddings, img_embeddings, encoder.layer.N, pooler.
class UniterModelImpl : public torch::nn::Module {
 public:
  struct Inputs {
    at::Tensor input_ids, position_ids;        // undefined input_ids = image only
    at::Tensor img_feat, img_pos_feat;         // undefined img_feat = text only
    at::Tensor attn_masks, gather_index;       // [B, L]
    at::Tensor img_masks, txt_type_ids, img_type_ids;  // optional
    // [B, L] bool: the rows whose outputs the caller reads (a pooled head:
    // FirstRows); undefined = every row.
    at::Tensor output_rows;
  };
  UniterModelImpl(const UniterConfig& config, int64_t img_dim);
  // The last layer's hidden states [B, L, H] (output_all_encoded_layers=False).
  // Equal to UNITER's at every row with attn_mask ≠ 0 that output_rows asks
  // for; every other row is zeros (UNITER computes values there that its heads
  // mask out or never read). Padding rows are skipped in every GEMM, and the
  // last layer computes only the rows asked for: the same math per row, less
  // work (a padded batch or a pooled head).
  at::Tensor forward(const Inputs& in);

  const UniterConfig& config() const { return config_; }

  TextEmbeddings embeddings{nullptr};
  ImageEmbeddings img_embeddings{nullptr};
  Encoder encoder{nullptr};
  Pooler pooler{nullptr};

 private:
  at::Tensor Embed(const Inputs& in);
  UniterConfig config_;
};
TORCH_MODULE(UniterModel);

}  // namespace uniter::trainer
