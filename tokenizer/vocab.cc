#include "tokenizer/vocab.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "tokenizer/internal/unicode_props.h"
#include "common/utf8.h"

namespace uniter::tokenizer {

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowErrno("cannot open", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) ThrowErrno("cannot read", path);
  return ss.str();
}

// Python's str.strip(): removes str.isspace() characters at both ends.
std::string PyStrip(std::string_view line) {
  std::u32string u = DecodeUtf8(line);
  size_t b = 0, e = u.size();
  while (b < e && internal::IsPySpace(u[b])) ++b;
  while (e > b && internal::IsPySpace(u[e - 1])) --e;
  return EncodeUtf8(std::u32string_view(u).substr(b, e - b));
}

}  // namespace

Vocab Vocab::FromTxt(const std::string& path) {
  const std::string data = ReadAll(path);
  std::vector<std::string> tokens;
  size_t i = 0;
  long line_no = 0;
  while (i < data.size()) {
    size_t j = i;
    while (j < data.size() && data[j] != '\n' && data[j] != '\r') ++j;
    const std::string_view line(data.data() + i, j - i);
    ++line_no;
    if (!IsValidUtf8(line)) throw FormatError("invalid UTF-8 in vocabulary", Where(path, line_no));
    tokens.push_back(PyStrip(line));
    if (j < data.size() && data[j] == '\r' && j + 1 < data.size() && data[j + 1] == '\n') ++j;
    i = j + 1;
  }
  if (tokens.empty()) throw FormatError("empty vocabulary", path);
  return FromTokens(std::move(tokens));
}

Vocab Vocab::FromTokens(std::vector<std::string> tokens) {
  Vocab v;
  v.tokens_ = std::move(tokens);
  v.ids_.reserve(v.tokens_.size());
  for (size_t id = 0; id < v.tokens_.size(); ++id)
    v.ids_.insert_or_assign(v.tokens_[id], static_cast<int32_t>(id));  // last one wins, like a dict
  return v;
}

Vocab Vocab::FromTokenizerJson(const std::string& path, WordPieceConfig* config,
                               std::optional<bool>* lower) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ReadAll(path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("not valid JSON: ") + e.what(), path);
  }
  try {
    const auto& model = j.at("model");
    const std::string type = model.value("type", "");
    if (type != "WordPiece")
      throw FormatError("model type is '" + type + "', only WordPiece tokenizer.json files are supported", path);
    if (model.contains("unk_token") && model["unk_token"].is_string())
      config->unk_token = model["unk_token"].get<std::string>();
    if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string())
      config->continuing_subword_prefix = model["continuing_subword_prefix"].get<std::string>();
    if (model.contains("max_input_chars_per_word") && model["max_input_chars_per_word"].is_number())
      config->max_input_chars_per_word = model["max_input_chars_per_word"].get<int>();
    std::vector<std::string> tokens;
    for (const auto& [token, id_json] : model.at("vocab").items()) {
      const int64_t id = id_json.get<int64_t>();
      if (id < 0 || id > (int64_t{1} << 30)) throw FormatError("bad id for token '" + token + "'", path);
      if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(static_cast<size_t>(id) + 1);
      tokens[static_cast<size_t>(id)] = token;
    }
    if (tokens.empty()) throw FormatError("empty vocabulary", path);
    // The normalizer may be a BertNormalizer or a Sequence holding one.
    std::function<void(const nlohmann::json&)> find_lower = [&](const nlohmann::json& n) {
      if (!n.is_object()) return;
      if (n.value("type", "") == "BertNormalizer" && n.contains("lowercase") && n["lowercase"].is_boolean())
        *lower = n["lowercase"].get<bool>();
      if (n.contains("normalizers") && n["normalizers"].is_array())
        for (const auto& m : n["normalizers"]) find_lower(m);
    };
    if (j.contains("normalizer")) find_lower(j["normalizer"]);
    return FromTokens(std::move(tokens));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("unexpected tokenizer.json layout: ") + e.what(), path);
  }
}

int32_t Vocab::TokenToId(std::string_view token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

}  // namespace uniter::tokenizer
