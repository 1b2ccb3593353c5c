// A WordPiece vocabulary: token <-> id, loaded from BERT's vocab.txt or from a
// HuggingFace tokenizer.json whose model is WordPiece.
// Immutable after loading; safe for concurrent reads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace uniter::tokenizer {

// The WordPiece model's settings (tokenizer.json spells them the same way).
struct WordPieceConfig {
  std::string unk_token = "[UNK]";                // Default: "[UNK]"
  std::string continuing_subword_prefix = "##";   // Default: "##"
  int max_input_chars_per_word = 100;             // Default: 100 code points
};

// Hash that lets unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Vocab {
 public:
  // vocab.txt exactly as pytorch-pretrained-bert's load_vocab reads it: one
  // token per line (\n, \r\n or \r), str.strip()ped; ids are line numbers; a
  // token listed twice keeps its last id. Throws IoError / FormatError
  // (invalid UTF-8, "file:line") naming the file.
  static Vocab FromTxt(const std::string& path);

  // A tokenizer.json with "model": {"type": "WordPiece", "vocab": {...}}.
  // Fills *config from the model, and *lower from a BertNormalizer's
  // "lowercase" when the file has one (else leaves it empty).
  static Vocab FromTokenizerJson(const std::string& path, WordPieceConfig* config,
                                 std::optional<bool>* lower);

  // Builds from tokens in id order (tests, tools).
  static Vocab FromTokens(std::vector<std::string> tokens);

  // -1 when absent.
  int32_t TokenToId(std::string_view token) const;
  // REQUIRES: 0 <= id < size(). Ids without a token (holes in a
  // tokenizer.json) give the empty string.
  const std::string& IdToToken(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  size_t size() const { return tokens_.size(); }
  // (token, id) of every distinct token, the id a lookup gives.
  const std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>& ids()
      const {
    return ids_;
  }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
};

}  // namespace uniter::tokenizer
