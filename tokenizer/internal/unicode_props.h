// Character properties with the exact meaning pytorch-pretrained-bert 0.6.2 gives
// them under Python 3.11, computed from ICU. Python's own str semantics
// (category, isspace, lower) and the Unicode-version policy live in
// common/py_str.h: characters newer than Unicode 14 are "Cn" (unassigned) to
// Python 3.11, so BERT's _clean_text drops them. The remaining differences were
// measured code point by code point against Python's unicodedata/str methods
// (tests/tokenizer/unicode_props_test.cc).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/py_str.h"

namespace uniter::tokenizer::internal {

using ::uniter::IsCased;
using ::uniter::IsCaseIgnorable;
using ::uniter::IsPyAssigned;
using ::uniter::IsPySpace;
using ::uniter::PyCategory;
using ::uniter::PyLowerChar;

// BERT's _is_whitespace: space, \t, \n, \r and category Zs.
bool IsBertWhitespace(char32_t c);
// BERT's _is_control: every category C* except \t, \n, \r.
bool IsBertControl(char32_t c);
// BERT's _is_punctuation: ASCII 33-47, 58-64, 91-96, 123-126 and category P*.
bool IsBertPunctuation(char32_t c);
// BERT's _is_chinese_char block list.
bool IsChineseChar(char32_t c);
// Category Mn (what _run_strip_accents removes after NFD).
bool IsNonSpacingMark(char32_t c);
// What the BERT normalizer does to one character, packed for the fused path.
enum CharFlag : uint8_t {
  kPySpace = 1,     // ends a word (str.split)
  kDrop = 2,        // removed by _clean_text (U+0000, U+FFFD, controls, unassigned)
  kPunct = 4,       // its own piece
  kCjk = 8,         // padded with spaces (its own piece)
  kMapped = 16,     // lower-case mode changes it: lower + NFD + drop Mn != itself
  kBailLower = 32,  // lower-case mode needs token context (final sigma, NFD reordering)
};

// Flags of `c` (table lookup for the BMP, computed above it).
uint8_t CharFlags(char32_t c);
// For kMapped characters: lower + NFD + Mn removal of `c` alone. Returns the
// number of code points written to out[0..7] (0 when the character vanishes).
int LowerStripOne(char32_t c, char32_t out[8]);

}  // namespace uniter::tokenizer::internal
