// The WordPiece model: greedy longest-match-first with a continuation prefix
// ("##"), a word longer than max_input_chars_per_word code points or with an
// unmatchable remainder becomes the unknown token.
//
// Linear time: LinMaxMatch (Song et al., "Fast WordPiece Tokenization", 2021).
// The vocabulary is a byte trie with two roots, one for word-initial tokens
// and one for continuation tokens (their prefix removed); every node carries a
// failure link and the "failure pops" (token ids emitted when following it),
// so each input byte costs O(1) amortised. The trie is a double array
// (base/check), one add and one compare per transition.
//
// Immutable after construction; safe for concurrent use (State is per caller).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace uniter::tokenizer {

class WordPiece {
 public:
  // Throws FormatError when config.unk_token is not in `vocab`.
  WordPiece(const Vocab& vocab, const WordPieceConfig& config);

  // Appends the ids of one word (a piece without whitespace, UTF-8).
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  // Incremental form for callers that produce a word byte by byte:
  // Begin(), Feed() each byte (and count code points in chars), End().
  struct State {
    int32_t node = 0;
    int32_t chars = 0;  // code points fed; the caller increments it
    bool failed = false;
    size_t mark = 0;    // ids->size() at Begin()
  };
  void Begin(State* st, const std::vector<int32_t>& ids) const {
    st->node = kRoot;
    st->chars = 0;
    st->failed = false;
    st->mark = ids.size();
  }
  void Feed(State* st, uint8_t byte, std::vector<int32_t>* ids) const {
    if (st->failed) return;
    int32_t u = st->node;
    for (;;) {
      const int32_t t = base_[static_cast<size_t>(u)] + byte;
      if (check_[static_cast<size_t>(t)] == u) {
        st->node = t;
        return;
      }
      const int32_t f = fail_[static_cast<size_t>(u)];
      if (f < 0) {
        st->failed = true;
        return;
      }
      AppendPops(u, ids);
      u = f;
    }
  }
  void End(State* st, std::vector<int32_t>* ids) const;

  int32_t unk_id() const { return unk_id_; }
  // Trie slots in use (for tests and the benchmark's report).
  size_t trie_size() const { return base_.size(); }

 private:
  static constexpr int32_t kRoot = 0;
  static constexpr int32_t kSuffixRoot = 1;

  void AppendPops(int32_t u, std::vector<int32_t>* ids) const {
    const uint32_t off = pop_off_[static_cast<size_t>(u)];
    const uint32_t len = pop_len_[static_cast<size_t>(u)];
    ids->insert(ids->end(), pops_.begin() + off, pops_.begin() + off + len);
  }

  std::vector<int32_t> base_;   // child of u by byte c is slot base_[u] + c ...
  std::vector<int32_t> check_;  // ... when check_[slot] == u
  std::vector<int32_t> fail_;   // failure link, -1 when none
  std::vector<uint32_t> pop_off_;
  std::vector<uint32_t> pop_len_;
  std::vector<int32_t> pops_;
  int32_t unk_id_ = -1;
  int max_chars_ = 100;
};

}  // namespace uniter::tokenizer
