#include "common/py_str.h"

#include <unicode/uchar.h>

#include "common/utf8.h"

namespace uniter {

bool IsPyAssigned(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] != 0 && age[0] <= kPyUnicodeMajor;
}

int PyCategory(char32_t c) {
  if (c > 0x10FFFF) return U_UNASSIGNED;
  const int cat = u_charType(static_cast<UChar32>(c));
  // Private use and surrogates have an age; unassigned code points have age 0.0.
  if (cat != U_UNASSIGNED && !IsPyAssigned(c)) return U_UNASSIGNED;
  return cat;
}

bool IsPySpace(char32_t c) {
  // Python 3.11's _PyUnicode_IsWhitespace: bidi class WS, B or S, or category Zs.
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D:
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x20:
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool IsCased(char32_t c) {
  return IsPyAssigned(c) && u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED);
}

bool IsCaseIgnorable(char32_t c) {
  return IsPyAssigned(c) && u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASE_IGNORABLE);
}

int PyLowerChar(char32_t c, char32_t out[3]) {
  // SpecialCasing.txt's only unconditional one-to-many lower-case mapping.
  if (c == 0x130) {
    out[0] = 0x69;
    out[1] = 0x307;
    return 2;
  }
  out[0] = IsPyAssigned(c) ? static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))) : c;
  return 1;
}

std::u32string PyLower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    const char32_t c = text[i];
    if (c == 0x3A3) {
      // CPython's handle_capital_sigma: final when preceded by a cased letter
      // and not followed by one (case-ignorable characters skipped both ways).
      size_t j = i;
      char32_t prev = 0;
      bool found = false;
      while (j > 0) {
        prev = text[--j];
        if (!IsCaseIgnorable(prev)) {
          found = true;
          break;
        }
      }
      bool final_sigma = found && IsCased(prev);
      if (final_sigma && i + 1 < n) {
        size_t k = i + 1;
        for (; k < n; ++k)
          if (!IsCaseIgnorable(text[k])) break;
        final_sigma = k == n || !IsCased(text[k]);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
      continue;
    }
    char32_t low[3];
    const int m = PyLowerChar(c, low);
    out.append(low, low + m);
  }
  return out;
}

std::string PyLowerUtf8(std::string_view text) { return EncodeUtf8(PyLower(DecodeUtf8(text))); }

}  // namespace uniter
