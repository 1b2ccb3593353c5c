// HF tokenizers (Rust core: BertNormalizer + BertPreTokenizer + WordPiece,
// built by BertWordPieceTokenizer from the same vocab.txt) against
// pytorch-pretrained-bert 0.6.2 under UNITER's bert_tokenize. We follow
// pytorch-pretrained-bert; this test lists every way HF differs and fails
// on any difference the list does not explain. It also loads HF's
// tokenizer.json into our tokenizer, which must still match
// pytorch-pretrained-bert.
#include <gtest/gtest.h>

#include <unicode/uchar.h>

#include <functional>
#include <map>

#include "tests/test_util.h"
#include "tests/tokenizer/corpus.h"
#include "tokenizer/bert_tokenizer.h"
#include "tokenizer/internal/unicode_props.h"
#include "common/utf8.h"

namespace uniter::tokenizer {
namespace {

using testing::Escape;

struct Difference {
  const char* name;
  const char* why;
  std::function<bool(const std::u32string& line, bool lower)> applies;
};

// Non-spacing marks HF's accent stripping keeps: its Mn table is Unicode
// 8.0's, so marks added (or re-categorized as Mn) since then stay. Measured:
// 384 code points, exactly these.
bool IsMarkNewerThanHf(char32_t c) {
  if (internal::PyCategory(c) != U_NON_SPACING_MARK) return false;
  if (c == 0x1885 || c == 0x1886 || c == 0xA9BD || c == 0x111C9) return true;  // re-categorized as Mn
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] >= 9;
}

// The line with every listed cause taken out; HF and pytorch-pretrained-bert
// must then agree, so no unlisted cause hides behind a listed one.
std::string Neutralize(const std::u32string& line) {
  std::u32string out;
  for (char32_t c : line) {
    if (c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1F) || c == 0x85) c = U' ';
    if (internal::PyCategory(c) == U_UNASSIGNED || (c >= 0x2B820 && c <= 0x2CEAF) || IsMarkNewerThanHf(c)) continue;
    if (c == 0x3A3) c = 0x3C3;
    out.push_back(c);
    if (c == U'[') out.push_back(U' ');  // "[ UNK]" is no special token for either
  }
  return EncodeUtf8(out);
}

bool Contains(const std::u32string& s, std::initializer_list<char32_t> cs) {
  for (char32_t c : s)
    for (char32_t x : cs)
      if (c == x) return true;
  return false;
}

// Every known way HF's output differs from pytorch-pretrained-bert's.
const std::vector<Difference>& KnownDifferences() {
  static const std::vector<Difference> list = {
      {"python-split-whitespace",
       "\\v \\f \\x1c-\\x1f \\x85 are str.isspace(), so UNITER's text.split() ends the word there; HF's "
       "normalizer deletes them as control characters and glues the neighbouring words together",
       [](const std::u32string& s, bool) { return Contains(s, {0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x1F, 0x85}); }},
      {"unassigned-code-point",
       "code points unassigned in Python 3.11's Unicode 14 (category Cn: reserved, noncharacters, and the "
       "Unicode 15 additions) are dropped by BERT's _clean_text (category C*); HF keeps them, so the word "
       "becomes [UNK]",
       [](const std::u32string& s, bool) {
         for (char32_t c : s)
           if (internal::PyCategory(c) == U_UNASSIGNED) return true;
         return false;
       }},
      {"final-sigma",
       "Python's str.lower() maps a word-final U+03A3 to final sigma U+03C2 (Final_Sigma rule); HF lower-cases "
       "character by character and always gives U+03C3",
       [](const std::u32string& s, bool lower) { return lower && Contains(s, {0x3A3}); }},
      {"special-token-inside-text",
       "HF matches its added special tokens ([UNK] [SEP] [PAD] [CLS] [MASK]) anywhere in the raw text, also "
       "inside words; pytorch-pretrained-bert keeps them whole only as a whole whitespace-separated token and "
       "otherwise splits the brackets off as punctuation",
       [](const std::u32string& s, bool) {
         for (std::u32string_view t : {U"[UNK]", U"[SEP]", U"[PAD]", U"[CLS]", U"[MASK]"})
           if (s.find(t) != std::u32string::npos) return true;
         return false;
       }},
      {"mark-newer-than-hf",
       "lower-case mode strips every Mn character after NFD; HF's accent stripping knows only the Mn set of "
       "Unicode 8.0, so the 384 marks added or re-categorized since stay in the word, which becomes [UNK]",
       [](const std::u32string& s, bool lower) {
         if (!lower) return false;
         for (char32_t c : s)
           if (IsMarkNewerThanHf(c)) return true;
         return false;
       }},
      {"cjk-extension-e",
       "BERT's _is_chinese_char list includes U+2B820-U+2CEAF (CJK Extension E) and pads those characters "
       "with spaces; HF does not, so they stay inside their word",
       [](const std::u32string& s, bool) {
         for (char32_t c : s)
           if (c >= 0x2B820 && c <= 0x2CEAF) return true;
         return false;
       }},
  };
  return list;
}

struct Case {
  const char* corpus;
  bool cased;  // cased vocab and no lower-casing, else uncased + lower
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.corpus << (c.cased ? " cased" : " uncased"); }

class HfCompare : public ::testing::TestWithParam<Case> {};

TEST_P(HfCompare, EveryDifferenceIsExplained) {
  UNITER_REQUIRE_PYTHON_MODULE("pytorch_pretrained_bert");
  UNITER_REQUIRE_PYTHON_MODULE("tokenizers");
  const Case& c = GetParam();
  const std::string corpus = c.corpus;
  const std::vector<std::string> lines = corpus == "nlvr2" ? testing::Nlvr2Sentences()
                                         : corpus == "cc"  ? testing::CcCaptions()
                                                           : testing::TortureLines();
  const std::string vocab = testing::VocabPath(c.cased);
  const bool lower = !c.cased;
  const std::string json = uniter::testing::TempDir("hf") + "/tokenizer.json";
  const auto ppb = testing::ReferenceIds("ppb", vocab, lower, lines);
  const auto hf = testing::ReferenceIds("hf", vocab, lower, lines, json);

  // Our tokenizer from HF's tokenizer.json (lower-casing read from the file).
  TokenizerOptions opts;
  opts.vocab_path = json;
  const auto ours = CreateTokenizer(opts);
  EXPECT_EQ(ours->lower_case(), lower);

  std::map<std::string, int> seen, sole;
  std::vector<std::string> neutralized;
  int differing = 0, unexplained = 0, ours_bad = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (ours->Encode(lines[i]) != ppb[i] && ++ours_bad <= 5)
      ADD_FAILURE() << "ours (tokenizer.json) differs from ppb on line " << i << " '" << Escape(lines[i]) << "'";
    if (hf[i] == ppb[i]) continue;
    ++differing;
    const std::u32string u = DecodeUtf8(lines[i]);
    bool explained = false;
    std::string only;
    int causes = 0;
    for (const auto& d : KnownDifferences()) {
      if (d.applies(u, lower)) {
        ++seen[d.name];
        explained = true;
        only = d.name;
        ++causes;
      }
    }
    if (causes == 1) ++sole[only];
    neutralized.push_back(Neutralize(u));
    if (!explained && ++unexplained <= 10)
      ADD_FAILURE() << "HF differs from pytorch-pretrained-bert for an unlisted reason on line " << i << " '"
                    << Escape(lines[i]) << "'";
  }
  EXPECT_EQ(ours_bad, 0);
  EXPECT_EQ(unexplained, 0);
  if (!neutralized.empty()) {
    const auto ppb_n = testing::ReferenceIds("ppb", vocab, lower, neutralized);
    const auto hf_n = testing::ReferenceIds("hf", vocab, lower, neutralized);
    int left = 0;
    for (size_t i = 0; i < neutralized.size(); ++i)
      if (ppb_n[i] != hf_n[i] && ++left <= 10)
        ADD_FAILURE() << "HF still differs with the listed causes removed: '" << Escape(neutralized[i]) << "'";
    EXPECT_EQ(left, 0);
  }
  std::printf("%s %s: %zu lines, HF differs on %d\n", c.corpus, c.cased ? "cased" : "uncased", lines.size(),
              differing);
  for (const auto& d : KnownDifferences())
    std::printf("  %-26s %5d lines, %4d as the only cause  (%s)\n", d.name, seen[d.name], sole[d.name], d.why);
  if (corpus == "torture") {
    // The torture corpus holds an example of each listed difference.
    for (const auto& d : KnownDifferences()) {
      if (!lower && (std::string(d.name) == "final-sigma" || std::string(d.name) == "mark-newer-than-hf")) continue;
      EXPECT_GT(sole[d.name], 0) << d.name << " is never the only cause: the list is stale";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Corpora, HfCompare,
                         ::testing::Values(Case{"torture", false}, Case{"torture", true}, Case{"nlvr2", false},
                                           Case{"cc", true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.corpus) + (info.param.cased ? "_Cased" : "_Uncased");
                         });

}  // namespace
}  // namespace uniter::tokenizer
