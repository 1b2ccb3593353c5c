// Our ids against pytorch-pretrained-bert 0.6.2 (UNITER's pinned tokenizer),
// run through UNITER's bert_tokenize in the test venv: every line of every
// corpus, both shared vocabularies, lower-cased and cased. Both of our paths
// (fused and staged) must match.
#include <gtest/gtest.h>

#include <functional>

#include "tests/test_util.h"
#include "tests/tokenizer/corpus.h"
#include "tokenizer/bert_tokenizer.h"

namespace uniter::tokenizer {
namespace {

using testing::Escape;

struct Case {
  const char* corpus;
  bool cased_vocab;
  bool lower;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.corpus << (c.cased_vocab ? " cased vocab" : " uncased vocab") << (c.lower ? " lower" : " cased");
}

std::vector<std::string> Load(const std::string& corpus) {
  if (corpus == "nlvr2") return testing::Nlvr2Sentences();
  if (corpus == "cc") return testing::CcCaptions();
  if (corpus == "torture") return testing::TortureLines();
  return testing::AllCodePointLines();
}

std::string Join(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += (s.empty() ? "" : " ") + std::to_string(x);
  return s;
}

class PpbReference : public ::testing::TestWithParam<Case> {};

TEST_P(PpbReference, IdenticalIds) {
  UNITER_REQUIRE_PYTHON_MODULE("pytorch_pretrained_bert");
  const Case& c = GetParam();
  const std::vector<std::string> lines = Load(c.corpus);
  ASSERT_GT(lines.size(), 100u);
  const std::string vocab = testing::VocabPath(c.cased_vocab);
  const auto ref = testing::ReferenceIds("ppb", vocab, c.lower, lines);

  TokenizerOptions opts;
  opts.vocab_path = vocab;
  opts.lower = c.lower;
  const auto fused = BertTokenizer::Load(opts, /*fast_path=*/true);
  const auto staged = BertTokenizer::Load(opts, /*fast_path=*/false);
  size_t bad_fused = 0, bad_staged = 0, tokens = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto a = fused->Encode(lines[i]);
    const auto b = staged->Encode(lines[i]);
    tokens += ref[i].size();
    if (a != ref[i] && ++bad_fused <= 5)
      ADD_FAILURE() << "fused line " << i << " '" << Escape(lines[i]) << "'\n  ours " << Join(a) << "\n  ppb  "
                    << Join(ref[i]);
    if (b != ref[i] && ++bad_staged <= 5)
      ADD_FAILURE() << "staged line " << i << " '" << Escape(lines[i]) << "'\n  ours " << Join(b) << "\n  ppb  "
                    << Join(ref[i]);
  }
  EXPECT_EQ(bad_fused, 0u);
  EXPECT_EQ(bad_staged, 0u);
  EXPECT_GT(tokens, lines.size());  // the reference really produced ids
  RecordProperty("lines", static_cast<int>(lines.size()));
  std::printf("%s %s lower=%d: %zu lines, %zu ids, fused mismatches %zu, staged mismatches %zu\n", c.corpus,
              c.cased_vocab ? "cased-vocab" : "uncased-vocab", c.lower, lines.size(), tokens, bad_fused, bad_staged);
}

std::vector<Case> AllCases() {
  std::vector<Case> v;
  for (const char* corpus : {"nlvr2", "cc", "torture", "codepoints"})
    for (bool cased_vocab : {false, true})
      for (bool lower : {true, false}) v.push_back({corpus, cased_vocab, lower});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Corpora, PpbReference, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.corpus) +
                                  (info.param.cased_vocab ? "_CasedVocab" : "_UncasedVocab") +
                                  (info.param.lower ? "_Lower" : "_Cased");
                         });

}  // namespace
}  // namespace uniter::tokenizer
