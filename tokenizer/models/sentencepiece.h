// The SentencePiece backend (libsentencepiece) behind the Tokenizer interface,
// for multilingual checkpoints. Encode(text) is the model's encoding of the
// whole text, the same ids as the spm_encode CLI gives for that line; the
// model does its own normalization, so lower_case() is false.
//
// libsentencepiece is reached through a small shim shared object loaded with
// dlopen (see sentencepiece_shim.cc for why); it is looked for at
// $UNITER_SPM_SHIM, beside the running binary, in ../lib/uniter/ from it, and
// at its build-tree path.
// Thread safe: SentencePieceProcessor::Encode is const and reentrant.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace uniter::tokenizer {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Throws IoError/FormatError naming `model_path` when it cannot be loaded.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int32_t> Encode(std::string_view text) const override;
  std::vector<std::string> Tokenize(std::string_view text) const override;
  int32_t TokenToId(std::string_view token) const override;
  const std::string& IdToToken(int32_t id) const override;
  size_t VocabSize() const override { return pieces_.size(); }
  SpecialIds special() const override { return special_; }
  bool lower_case() const override { return false; }
  std::string Name() const override { return name_; }

 private:
  void* model_ = nullptr;  // the shim's SentencePieceProcessor
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
  std::string name_;
  std::string path_;
  SpecialIds special_;
};

}  // namespace uniter::tokenizer
