// Every code point's BERT-relevant properties from our ICU-based tables
// against Python 3.11's unicodedata / str methods as pytorch-pretrained-bert
// uses them (tests/tokenizer/unicode_dump.py writes the reference table).
#include <gtest/gtest.h>

#include <unicode/uchar.h>

#include <fstream>
#include <sstream>

#include "tests/test_util.h"
#include "tokenizer/internal/unicode_props.h"
#include "tokenizer/normalizer.h"

namespace uniter::tokenizer {
namespace {

using namespace internal;  // NOLINT

std::string Hex(char32_t c) {
  std::ostringstream s;
  s << std::hex << static_cast<uint32_t>(c);
  return s.str();
}

// The same line unicode_dump.py writes, from our side. `fused` uses the
// fast path's per-character table instead of the staged normalizer.
std::string Line(char32_t c, bool fused) {
  int flags = IsPySpace(c) | IsBertWhitespace(c) << 1 | IsBertControl(c) << 2 | IsBertPunctuation(c) << 3 |
              IsNonSpacingMark(c) << 4 | IsChineseChar(c) << 5;
  std::u32string m;
  if (fused) {
    char32_t out[8];
    const int n = LowerStripOne(c, out);
    m.assign(out, out + n);
  } else {
    m = BertNormalizer::LowerStripAccents(std::u32string(1, c));
  }
  std::string ms;
  if (c == 0x3A3 || m == std::u32string(1, c)) {
    ms = "=";
  } else if (m.empty()) {
    ms = "-";
  } else {
    for (size_t k = 0; k < m.size(); ++k) ms += (k ? "," : "") + Hex(m[k]);
  }
  return Hex(c) + " " + std::to_string(flags) + " " + ms;
}

TEST(UnicodeProps, EveryCodePointMatchesPython) {
  UNITER_REQUIRE_PYTHON_MODULE("pytorch_pretrained_bert");
  const std::string path = uniter::testing::TempDir("unicode") + "/python.txt";
  const auto r = uniter::testing::Run(uniter::testing::Quote(uniter::testing::Python()) + " " +
                                      uniter::testing::Quote(uniter::testing::SourceRoot() +
                                                             "/tests/tokenizer/unicode_dump.py") +
                                      " " + uniter::testing::Quote(path) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(path);
  std::string want;
  size_t lines = 0, bad_staged = 0, bad_fused = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    ASSERT_TRUE(std::getline(in, want)) << "reference ends before U+" << Hex(c);
    ++lines;
    const std::string staged = Line(c, false), fused = Line(c, true);
    if (staged != want && ++bad_staged <= 10) ADD_FAILURE() << "staged: ours '" << staged << "' python '" << want << "'";
    // The fast path's table serves characters that are neither whitespace nor dropped.
    const bool served = !(CharFlags(c) & (kPySpace | kDrop));
    if (served && fused != want && ++bad_fused <= 10)
      ADD_FAILURE() << "fused table: ours '" << fused << "' python '" << want << "'";
  }
  EXPECT_EQ(lines, 0x110000u - 0x800u);
  EXPECT_EQ(bad_staged, 0u);
  EXPECT_EQ(bad_fused, 0u);
}

// What the Unicode 14 pin is for: ICU 72 alone (Unicode 15) would keep the
// 4,489 characters Unicode 15 added, which Python 3.11 treats as unassigned.
TEST(UnicodeProps, Unicode15AdditionsAreUnassigned) {
  int newer = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    UVersionInfo age;
    u_charAge(static_cast<UChar32>(c), age);
    if (age[0] == 15) {
      ++newer;
      EXPECT_FALSE(IsPyAssigned(c));
      EXPECT_TRUE(IsBertControl(c));  // so _clean_text drops it
    }
  }
  EXPECT_EQ(newer, 4489);
  EXPECT_TRUE(IsChineseChar(0x31350) == false);  // CJK Ext. H is outside BERT's list
  EXPECT_TRUE(IsPyAssigned(0x1F600));
}

}  // namespace
}  // namespace uniter::tokenizer
