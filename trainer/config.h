// UNITER's model configuration (model/model.py:UniterConfig), read from the
// same JSON files UNITER ships (config/uniter-base.json, uniter-large.json) or
// any smaller one. LibTorch-free.
#pragma once

#include <cstdint>
#include <string>

namespace uniter::trainer {

struct UniterConfig {
  int64_t vocab_size = 28996;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";  // "gelu", "relu" or "swish" (layer.py:ACT2FN)
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;
  // Not in UNITER's JSON: utils/const.py's IMG_DIM (region feature width).
  int64_t img_dim = 2048;

  // Parses UNITER's JSON. Unknown keys are ignored (UNITER stores them as
  // attributes and never reads them); a key of the wrong type or an invalid
  // value (hidden size not divisible by the heads, unknown activation) throws
  // FormatError naming `where` and the key.
  static UniterConfig FromJson(const std::string& json_text, const std::string& where);
  // Reads a JSON file. Throws IoError if it cannot be read.
  static UniterConfig FromJsonFile(const std::string& path);
  // UNITER's to_json_string: the keys above except img_dim, sorted, indent 2.
  std::string ToJson() const;
};

}  // namespace uniter::trainer
