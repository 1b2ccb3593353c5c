#include "common/utf8.h"

namespace uniter {

std::u32string DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0, len = 0; i < s.size(); i += len) out.push_back(DecodeUtf8(s, i, &len));
  return out;
}

std::string EncodeUtf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) AppendUtf8(c, &out);
  return out;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0, len = 0; i < s.size(); i += len) {
    const char32_t c = DecodeUtf8(s, i, &len);
    if (c == kReplacementChar && IsIllFormedAt(s, i, len)) return false;
  }
  return true;
}

}  // namespace uniter
