// LinMaxMatch (our trie with failure links) against a direct transcription
// of pytorch-pretrained-bert's quadratic greedy longest-match-first loop, on
// random vocabularies and words where the two can only agree by being right.
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "tokenizer/models/wordpiece.h"
#include "tokenizer/vocab.h"

namespace uniter::tokenizer {
namespace {

// WordpieceTokenizer.tokenize for one word (byte strings; UTF-8 irrelevant here).
std::vector<int32_t> NaiveMaxMatch(const Vocab& vocab, const std::string& word, int max_chars = 100) {
  if (static_cast<int>(word.size()) > max_chars) return {vocab.TokenToId("[UNK]")};
  std::vector<int32_t> out;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    int32_t cur = -1;
    while (start < end) {
      std::string sub = word.substr(start, end - start);
      if (start > 0) sub = "##" + sub;
      cur = vocab.TokenToId(sub);
      if (cur >= 0) break;
      --end;
    }
    if (cur < 0) return {vocab.TokenToId("[UNK]")};
    out.push_back(cur);
    start = end;
  }
  return out;
}

TEST(WordPiece, MatchesGreedyLongestMatchOnRandomVocabularies) {
  std::mt19937 rng(7);
  int checked = 0, unk = 0;
  for (int round = 0; round < 40; ++round) {
    const int alphabet = 2 + round % 4;  // tiny alphabets force deep failure chains
    std::vector<std::string> tokens = {"[UNK]"};
    const int n = 5 + static_cast<int>(rng() % 60);
    for (int k = 0; k < n; ++k) {
      std::string t = (rng() % 2) ? "##" : "";
      const int len = 1 + static_cast<int>(rng() % 5);
      for (int j = 0; j < len; ++j) t.push_back(static_cast<char>('a' + rng() % alphabet));
      tokens.push_back(t);
    }
    const Vocab vocab = Vocab::FromTokens(tokens);
    const WordPiece wp(vocab, WordPieceConfig{});
    for (int w = 0; w < 300; ++w) {
      std::string word;
      const int len = 1 + static_cast<int>(rng() % 12);
      for (int j = 0; j < len; ++j) word.push_back(static_cast<char>('a' + rng() % alphabet));
      std::vector<int32_t> got;
      wp.Tokenize(word, &got);
      const auto want = NaiveMaxMatch(vocab, word);
      ASSERT_EQ(got, want) << "word '" << word << "' round " << round;
      ++checked;
      unk += want.size() == 1 && want[0] == 0;
    }
  }
  EXPECT_GT(unk, 100);             // both outcomes are exercised
  EXPECT_LT(unk, checked - 1000);
}

TEST(WordPiece, TextbookExampleAndLimits) {
  const Vocab vocab = Vocab::FromTokens({"[UNK]", "un", "##aff", "##able", "a", "##a", "##b", "abc", "##abc"});
  const WordPiece wp(vocab, WordPieceConfig{});
  auto tok = [&](const std::string& w) {
    std::vector<int32_t> ids;
    wp.Tokenize(w, &ids);
    return ids;
  };
  EXPECT_EQ(tok("unaffable"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(tok("unaffablex"), (std::vector<int32_t>{0}));
  EXPECT_EQ(tok(""), (std::vector<int32_t>{}));
  EXPECT_EQ(tok("abcabc"), (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(tok(std::string(100, 'a')).size(), 100u);          // 100 code points: still matched
  EXPECT_EQ(tok(std::string(101, 'a')), (std::vector<int32_t>{0}));  // over the limit
  // The limit counts code points, not bytes: 60 two-byte characters pass.
  const Vocab v2 = Vocab::FromTokens({"[UNK]", "\xc3\xa9", "##\xc3\xa9"});
  const WordPiece wp2(v2, WordPieceConfig{});
  std::string e60;
  for (int i = 0; i < 60; ++i) e60 += "\xc3\xa9";
  std::vector<int32_t> ids;
  wp2.Tokenize(e60, &ids);
  EXPECT_EQ(ids.size(), 60u);
}

TEST(WordPiece, MissingUnknownTokenIsAnError) {
  const Vocab vocab = Vocab::FromTokens({"a", "b"});
  EXPECT_THROW(WordPiece(vocab, WordPieceConfig{}), FormatError);
}

}  // namespace
}  // namespace uniter::tokenizer
