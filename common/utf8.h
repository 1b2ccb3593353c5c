// UTF-8 for every module: one decoder, one encoder, one validity check.
//
// Policy for ill-formed input: each maximal ill-formed subpart (Unicode's
// "best practice", what Python's `bytes.decode("utf-8", errors="replace")`
// does) decodes to U+FFFD. Overlong forms, surrogates (ED A0..BF) and code
// points above U+10FFFF are ill-formed. Writers that must keep bad bytes
// (common/py_json.h) look at the length and use their own policy.
//
// The decoder is ICU's U8_NEXT_OR_FFFD (header-only macros, same policy) with
// an inline ASCII fast path; the tokenizer calls it per character, and
// bench/tokenizer_bench measured it level with the hand-written decoder it
// replaced.
#pragma once

#include <unicode/utf8.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace uniter {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the code point at s[i] (REQUIRES: i < s.size()) and stores its byte
// length in *len (>= 1). Never reads past s.size(). Ill-formed bytes give
// kReplacementChar with *len covering the maximal ill-formed subpart.
inline char32_t DecodeUtf8(std::string_view s, size_t i, size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  // ICU indexes with int32_t; look at most 4 bytes ahead so huge inputs work.
  const size_t avail = s.size() - i < 4 ? s.size() - i : 4;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data() + i);
  int32_t k = 0;
  UChar32 c;
  U8_NEXT_OR_FFFD(p, k, static_cast<int32_t>(avail), c);
  *len = static_cast<size_t>(k);
  return static_cast<char32_t>(c);
}

// True when DecodeUtf8(s, i, &len) returned kReplacementChar for ill-formed
// bytes rather than for a literal U+FFFD.
inline bool IsIllFormedAt(std::string_view s, size_t i, size_t len) {
  return len != 3 || s.compare(i, 3, "\xEF\xBF\xBD") != 0;
}

// Appends the UTF-8 form of `cp`. REQUIRES: cp <= 0x10FFFF (surrogates are
// encoded as they come; callers that read untrusted input reject them first).
inline void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Whole strings.
std::u32string DecodeUtf8(std::string_view s);
std::string EncodeUtf8(std::u32string_view s);
// True when `s` is well-formed UTF-8.
bool IsValidUtf8(std::string_view s);

}  // namespace uniter
