// UTF-8 decoding with a fixed policy for bad input, shared by every stage.
//
// Policy: each maximal ill-formed subpart (the Unicode "best practice" that
// Python's `bytes.decode(errors="replace")` also follows) decodes to U+FFFD;
// overlong forms, surrogates (ED A0..BF) and code points above U+10FFFF are
// ill-formed. The BERT normalizer then drops U+FFFD like pytorch-pretrained-bert
// does, so a bad byte vanishes without splitting the word it sits in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace uniter::tokenizer::internal {

inline constexpr char32_t kReplacement = 0xFFFD;

// Decodes the code point at s[i] (REQUIRES: i < s.size()) and stores its byte
// length in *len (>= 1). Never reads past s.size().
inline char32_t DecodeUtf8(std::string_view s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const size_t avail = s.size() - i;
  const unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  size_t need;
  char32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *len = 1;
    return kReplacement;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (k >= avail) {  // ran out of input: the prefix is one bad subpart
      *len = k;
      return kReplacement;
    }
    const unsigned char b = p[k];
    const unsigned char l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xBF;
    if (b < l || b > h) {
      *len = k;
      return kReplacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = need + 1;
  return cp;
}

using ::uniter::AppendUtf8;

// Whole-string helpers for the staged path.
std::u32string DecodeUtf8(std::string_view s);
std::string EncodeUtf8(std::u32string_view s);
// True when `s` is well-formed UTF-8.
bool IsValidUtf8(std::string_view s);

}  // namespace uniter::tokenizer::internal
