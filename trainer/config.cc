#include "trainer/config.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace uniter::trainer {
namespace {

template <typename T>
void Read(const nlohmann::json& j, const char* key, const std::string& where, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  try {
    *out = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw FormatError(std::string("key '") + key + "' has the wrong type (" + it->type_name() + ")", where);
  }
}

void Validate(const UniterConfig& c, const std::string& where) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw FormatError(what, where);
  };
  need(c.vocab_size > 0, "vocab_size must be positive");
  need(c.hidden_size > 0, "hidden_size must be positive");
  need(c.num_hidden_layers >= 0, "num_hidden_layers must not be negative");
  need(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
       "hidden_size (" + std::to_string(c.hidden_size) + ") is not a multiple of num_attention_heads (" +
           std::to_string(c.num_attention_heads) + ")");
  need(c.intermediate_size > 0, "intermediate_size must be positive");
  need(c.hidden_act == "gelu" || c.hidden_act == "relu" || c.hidden_act == "swish",
       "hidden_act '" + c.hidden_act + "' is not one of gelu, relu, swish");
  need(c.hidden_dropout_prob >= 0 && c.hidden_dropout_prob < 1, "hidden_dropout_prob must be in [0, 1)");
  need(c.attention_probs_dropout_prob >= 0 && c.attention_probs_dropout_prob < 1,
       "attention_probs_dropout_prob must be in [0, 1)");
  need(c.max_position_embeddings > 0, "max_position_embeddings must be positive");
  need(c.type_vocab_size > 0, "type_vocab_size must be positive");
  need(c.initializer_range >= 0, "initializer_range must not be negative");
}

}  // namespace

UniterConfig UniterConfig::FromJson(const std::string& json_text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), where);
  }
  if (!j.is_object()) throw FormatError("a model config must be a JSON object", where);
  UniterConfig c;
  Read(j, "vocab_size", where, &c.vocab_size);
  Read(j, "hidden_size", where, &c.hidden_size);
  Read(j, "num_hidden_layers", where, &c.num_hidden_layers);
  Read(j, "num_attention_heads", where, &c.num_attention_heads);
  Read(j, "intermediate_size", where, &c.intermediate_size);
  Read(j, "hidden_act", where, &c.hidden_act);
  Read(j, "hidden_dropout_prob", where, &c.hidden_dropout_prob);
  Read(j, "attention_probs_dropout_prob", where, &c.attention_probs_dropout_prob);
  Read(j, "max_position_embeddings", where, &c.max_position_embeddings);
  Read(j, "type_vocab_size", where, &c.type_vocab_size);
  Read(j, "initializer_range", where, &c.initializer_range);
  // Not a key of UNITER's configs (its IMG_DIM is a constant 2048): narrower
  // features (a narrowed synthetic detector's) say their width here.
  Read(j, "img_dim", where, &c.img_dim);
  Validate(c, where);
  return c;
}

UniterConfig UniterConfig::FromJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open model config", path);
  std::ostringstream text;
  text << in.rdbuf();
  return FromJson(text.str(), path);
}

std::string UniterConfig::ToJson() const {
  nlohmann::json j;  // std::map-backed: keys come out sorted, as sort_keys=True
  j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
  j["hidden_act"] = hidden_act;
  j["hidden_dropout_prob"] = hidden_dropout_prob;
  j["hidden_size"] = hidden_size;
  j["initializer_range"] = initializer_range;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["num_attention_heads"] = num_attention_heads;
  j["num_hidden_layers"] = num_hidden_layers;
  j["type_vocab_size"] = type_vocab_size;
  j["vocab_size"] = vocab_size;
  return j.dump(2) + "\n";
}

}  // namespace uniter::trainer
