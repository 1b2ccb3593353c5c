#include "tokenizer/tokenizer.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <filesystem>

#include "common/error.h"
#include "tokenizer/bert_tokenizer.h"
#include "tokenizer/models/sentencepiece.h"

namespace uniter::tokenizer {

Tokenizer::~Tokenizer() = default;

std::vector<std::vector<int32_t>> Tokenizer::EncodeBatch(const std::vector<std::string_view>& texts) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  // Each slot is written by exactly one task, so the result does not depend
  // on how the range is split.
  tbb::parallel_for(tbb::blocked_range<size_t>(0, texts.size(), 64), [&](const tbb::blocked_range<size_t>& r) {
    for (size_t i = r.begin(); i != r.end(); ++i) out[i] = Encode(texts[i]);
  });
  return out;
}

std::string TokenizerNameFromPath(const std::string& path) {
  const std::filesystem::path p(path);
  std::string stem = p.stem().string();
  if (stem == "vocab" || stem == "tokenizer" || stem.empty()) {
    const std::string parent = p.parent_path().filename().string();
    if (!parent.empty() && parent != "." && parent != "..") return parent;
    return stem;
  }
  for (const char* suffix : {"-vocab", "_vocab", ".vocab"}) {
    const std::string s(suffix);
    if (stem.size() > s.size() && stem.compare(stem.size() - s.size(), s.size(), s) == 0)
      return stem.substr(0, stem.size() - s.size());
  }
  return stem;
}

std::unique_ptr<Tokenizer> CreateTokenizer(const TokenizerOptions& options) {
  if (!options.vocab_path.empty() && !options.spm_path.empty())
    throw UsageError("give either a vocabulary or a SentencePiece model, not both");
  if (!options.spm_path.empty()) {
    if (options.lower.value_or(false))
      throw UsageError("lower-casing is part of a SentencePiece model's own normalizer", options.spm_path);
    return std::make_unique<SentencePieceTokenizer>(options.spm_path);
  }
  if (options.vocab_path.empty()) throw UsageError("no vocabulary given (vocab.txt, tokenizer.json or a .model)");
  return BertTokenizer::Load(options);
}

}  // namespace uniter::tokenizer
