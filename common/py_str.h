// Python `str` semantics on Unicode code points, for every module that must
// match what a Python script does to text: the tokenizer (BERT's normalizer,
// str.split) and the converters (VQA answer normalization's str.lower and
// str.split).
//
// Unicode version policy. UNITER's Python side runs on CPython 3.11, whose
// unicodedata and str methods follow Unicode 14.0; ICU 72 (Debian 12) ships
// Unicode 15.0. Everything here answers as Python 3.11 does:
//   - characters first assigned after Unicode 14 are unassigned (category Cn):
//     no case mapping, not cased, not case-ignorable (u_charAge() filters
//     ICU's answers);
//   - isspace() is CPython 3.11's fixed whitespace table (bidi WS/B/S or Zs);
//     it has not changed between Unicode 14 and 15;
//   - lower() is the full lower-case mapping with CPython's Final_Sigma rule.
// Newer Python versions move to newer Unicode; matching them means changing
// kPyUnicodeMajor and re-running tests/tokenizer/unicode_props_test.cc, which
// compares every code point with the reference Python's own answers.
#pragma once

#include <string>
#include <string_view>

namespace uniter {

// The Unicode major version Python's str follows here (CPython 3.11).
inline constexpr int kPyUnicodeMajor = 14;

// True when `c` was assigned in Unicode <= kPyUnicodeMajor.
bool IsPyAssigned(char32_t c);
// unicodedata.category(c) as an ICU UCharCategory value (U_UNASSIGNED for
// characters newer than kPyUnicodeMajor).
int PyCategory(char32_t c);
// str.isspace(): what str.split() and str.strip() split on.
bool IsPySpace(char32_t c);
// Unicode Cased / Case_Ignorable (for the Final_Sigma rule of str.lower()).
bool IsCased(char32_t c);
bool IsCaseIgnorable(char32_t c);
// str.lower() of one character outside any context (U+03A3 gives U+03C3);
// returns the number of code points written to out[0..2].
int PyLowerChar(char32_t c, char32_t out[3]);
// str.lower() of a whole string (final sigma included).
std::u32string PyLower(std::u32string_view text);
// The same on UTF-8 (ill-formed bytes decode to U+FFFD, common/utf8.h).
std::string PyLowerUtf8(std::string_view text);

}  // namespace uniter
