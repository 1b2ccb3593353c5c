// The tokenizer API: UNITER's bert_tokenize over a BERT WordPiece vocabulary
// (vocab.txt or a HuggingFace tokenizer.json), or a SentencePiece model.
//
// BERT semantics are those of pytorch-pretrained-bert 0.6.2 under Python 3.11,
// which UNITER pins, id for id (tests/tokenizer checks every shared corpus):
//   Encode(text) = for word in text.strip().split():   # str.split whitespace
//                    ids += convert_tokens_to_ids(BertTokenizer.tokenize(word))
// Invalid UTF-8 never throws: each maximal ill-formed byte sequence becomes
// U+FFFD, which the BERT cleaner drops like any U+FFFD, so "a\xffb" encodes
// as "ab". A SentencePiece model gets the bytes as they are (its normalizer
// also maps ill-formed sequences to U+FFFD).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace uniter::tokenizer {

struct TokenizerOptions {
  std::string vocab_path;        // vocab.txt or a HF tokenizer.json (WordPiece)
  std::string spm_path;          // SentencePiece .model (instead of vocab_path)
  // Default: true iff the vocab file name contains "uncased" (for a generic
  // name such as vocab.txt or tokenizer.json, its folder's name), like UNITER;
  // a tokenizer.json's BertNormalizer "lowercase" setting wins over the name.
  // Must stay unset or false with spm_path (the model normalizes itself).
  std::optional<bool> lower;
};

// Ids of the special tokens, -1 when the vocabulary lacks one. SentencePiece
// models: unk is the model's unk id; cls/sep/pad/mask are the pieces "[CLS]",
// "[SEP]", "[PAD]", "[MASK]" when present, else the model's bos/eos/pad ids.
struct SpecialIds { int32_t unk = -1, cls = -1, sep = -1, pad = -1, mask = -1; };

class Tokenizer {  // thread safe for concurrent const calls
 public:
  virtual ~Tokenizer();
  // UNITER's bert_tokenize: whitespace split, per-word WordPiece, empty words dropped, ids concatenated; no CLS/SEP.
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  virtual std::vector<std::string> Tokenize(std::string_view text) const = 0;  // same, as token strings
  virtual int32_t TokenToId(std::string_view token) const = 0;   // -1 if absent
  virtual const std::string& IdToToken(int32_t id) const = 0;    // throws uniter::Error if out of range
  virtual size_t VocabSize() const = 0;
  virtual SpecialIds special() const = 0;
  virtual bool lower_case() const = 0;
  virtual std::string Name() const = 0;  // e.g. "bert-base-cased" from "bert-base-cased-vocab.txt"; the spm file stem
  // Parallel (TBB) batch encode; result[i] == Encode(texts[i]) whatever the thread count.
  // Runs in the caller's task arena (limit threads with tbb::task_arena).
  std::vector<std::vector<int32_t>> EncodeBatch(const std::vector<std::string_view>& texts) const;
};

// Loads what `options` names. Throws uniter::Error naming the file (IoError
// when it cannot be read, FormatError when it is not a vocabulary/model,
// UsageError for contradictory options).
std::unique_ptr<Tokenizer> CreateTokenizer(const TokenizerOptions& options);

// The name UNITER's meta.json records for a vocabulary/model path:
// "bert-base-cased-vocab.txt" -> "bert-base-cased", "x/multi.model" -> "multi",
// ".../bert-base-uncased/vocab.txt" -> "bert-base-uncased".
std::string TokenizerNameFromPath(const std::string& path);

}  // namespace uniter::tokenizer
