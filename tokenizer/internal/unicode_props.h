// Character properties with the exact meaning pytorch-pretrained-bert 0.6.2 gives
// them under Python 3.11, computed from ICU.
//
// Python 3.11 ships Unicode 14 and Debian's ICU 72 ships Unicode 15. Characters
// first assigned in Unicode 15 are "Cn" (unassigned) to Python, so BERT's
// _clean_text drops them; IsPyAssigned() reproduces that with u_charAge(). The
// remaining differences were measured code point by code point against
// Python's unicodedata/str methods (tests/tokenizer/unicode_props_test.cc).
#pragma once

#include <cstdint>
#include <string_view>

namespace uniter::tokenizer::internal {

// True when `c` was assigned in Unicode <= 14.0 (what Python 3.11 knows).
bool IsPyAssigned(char32_t c);
// The general category as Python's unicodedata.category() reports it, as an
// ICU UCharCategory value (U_UNASSIGNED for characters newer than Unicode 14).
int PyCategory(char32_t c);

// str.isspace(): what Python's str.split() and str.strip() split on.
bool IsPySpace(char32_t c);
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
// Unicode Cased / Case_Ignorable (for the Final_Sigma rule of str.lower()).
bool IsCased(char32_t c);
bool IsCaseIgnorable(char32_t c);
// str.lower() of one character outside any context (U+03A3 gives U+03C3);
// returns the number of code points written to out[0..2].
int PyLowerChar(char32_t c, char32_t out[3]);

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
