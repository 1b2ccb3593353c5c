// BERT WordPiece tokenization with UNITER's word loop (see tokenizer.h for
// the exact semantics). Two implementations of the same function:
//  - the staged path: SplitWords -> BertNormalizer -> SplitOnPunctuation ->
//    WordPiece, on code points, step for step like the Python code;
//  - the fused path (default): one pass over the UTF-8 bytes with table
//    lookups, feeding the WordPiece trie byte by byte; a word it cannot do
//    alone (a never_split token, a capital sigma or a combining-class
//    reordering in lower-case mode) is handed to the staged path.
// Tests check both give identical ids on every corpus.
// Immutable after construction; thread safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/models/wordpiece.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace uniter::tokenizer {

class BertTokenizer final : public Tokenizer {
 public:
  // Loads options.vocab_path (vocab.txt or tokenizer.json). `fast_path`
  // false forces the staged path (tests, benchmark).
  static std::unique_ptr<BertTokenizer> Load(const TokenizerOptions& options, bool fast_path = true);

  BertTokenizer(Vocab vocab, const WordPieceConfig& config, bool lower, std::string name,
                bool fast_path = true);

  std::vector<int32_t> Encode(std::string_view text) const override;
  std::vector<std::string> Tokenize(std::string_view text) const override;
  int32_t TokenToId(std::string_view token) const override { return vocab_.TokenToId(token); }
  const std::string& IdToToken(int32_t id) const override;
  size_t VocabSize() const override { return vocab_.size(); }
  SpecialIds special() const override { return special_; }
  bool lower_case() const override { return lower_; }
  std::string Name() const override { return name_; }

  // Appending forms of the two paths.
  void EncodeStaged(std::string_view text, std::vector<int32_t>* ids) const;
  void EncodeFused(std::string_view text, std::vector<int32_t>* ids) const;

  // BertTokenizer.tokenize(word) for one whitespace-free word, staged.
  void EncodeWordStaged(std::string_view word, std::vector<int32_t>* ids) const;

 private:
  bool NeverSplitAt(std::string_view text, size_t i) const;

  Vocab vocab_;
  WordPiece wordpiece_;
  bool lower_;
  std::string name_;
  bool fast_path_;
  SpecialIds special_;
  uint8_t ascii_flags_[128];
  uint8_t ascii_map_[128];  // identity, or lower case in lower-case mode
};

}  // namespace uniter::tokenizer
