#include "tokenizer/internal/unicode_props.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <memory>
#include <vector>

#include "common/error.h"

namespace uniter::tokenizer::internal {

namespace {

const icu::Normalizer2& Nfd() {
  static const icu::Normalizer2* nfd = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFDInstance(status);
    if (U_FAILURE(status)) throw Error(std::string("ICU NFD normalizer unavailable: ") + u_errorName(status));
    return n;
  }();
  return *nfd;
}

bool IsPCategory(int cat) {
  switch (cat) {
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool IsCCategory(int cat) {
  return cat == U_CONTROL_CHAR || cat == U_FORMAT_CHAR || cat == U_SURROGATE ||
         cat == U_PRIVATE_USE_CHAR || cat == U_UNASSIGNED;
}

// lower + NFD + drop Mn, for one character (no context).
int ComputeLowerStrip(char32_t c, char32_t out[8]) {
  char32_t low[3];
  const int nl = PyLowerChar(c, low);
  icu::UnicodeString s;
  for (int i = 0; i < nl; ++i) s.append(static_cast<UChar32>(low[i]));
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString d = Nfd().normalize(s, status);
  int n = 0;
  for (int32_t i = 0; i < d.length();) {
    const UChar32 x = d.char32At(i);
    i += U16_LENGTH(x);
    if (IsNonSpacingMark(static_cast<char32_t>(x))) continue;
    if (n < 8) out[n++] = static_cast<char32_t>(x);
  }
  return n;
}

uint8_t ComputeFlags(char32_t c) {
  if (IsPySpace(c)) return kPySpace;
  if (c == 0 || c == 0xFFFD || IsBertControl(c)) return kDrop;
  uint8_t f = 0;
  if (IsBertPunctuation(c)) f |= kPunct;
  if (IsChineseChar(c)) f |= kCjk;
  char32_t out[8];
  const int n = ComputeLowerStrip(c, out);
  if (n != 1 || out[0] != c) f |= kMapped;
  // NFD reorders characters of non-zero combining class; when one of them
  // survives Mn removal, per-character mapping is not enough.
  if (c == 0x3A3) f |= kBailLower;
  if (u_getCombiningClass(static_cast<UChar32>(c)) != 0 && !IsNonSpacingMark(c)) f |= kBailLower;
  for (int i = 0; i < n; ++i)
    if (u_getCombiningClass(static_cast<UChar32>(out[i])) != 0) f |= kBailLower;
  return f;
}

// BMP flags and mappings, built once on first use (~65k ICU lookups).
struct BmpTable {
  uint8_t flags[0x10000];
  uint32_t map[0x10000];  // offset << 4 | count into pool, for kMapped entries
  std::vector<char32_t> pool;

  BmpTable() {
    for (char32_t c = 0; c < 0x10000; ++c) {
      flags[c] = ComputeFlags(c);
      map[c] = 0;
      if (flags[c] & kMapped) {
        char32_t out[8];
        const int n = ComputeLowerStrip(c, out);
        map[c] = static_cast<uint32_t>(pool.size() << 4 | static_cast<uint32_t>(n));
        pool.insert(pool.end(), out, out + n);
      }
    }
  }
};

const BmpTable& Bmp() {
  static const auto* table = new BmpTable();  // never freed: used until exit
  return *table;
}

}  // namespace

bool IsBertWhitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  return PyCategory(c) == U_SPACE_SEPARATOR;
}

bool IsBertControl(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return IsCCategory(PyCategory(c));
}

bool IsBertPunctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
    return true;
  return IsPCategory(PyCategory(c));
}

bool IsChineseChar(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool IsNonSpacingMark(char32_t c) { return PyCategory(c) == U_NON_SPACING_MARK; }

uint8_t CharFlags(char32_t c) {
  if (c < 0x10000) return Bmp().flags[c];
  return ComputeFlags(c);
}

int LowerStripOne(char32_t c, char32_t out[8]) {
  if (c < 0x10000) {
    const BmpTable& t = Bmp();
    const uint32_t m = t.map[c];
    if (!(t.flags[c] & kMapped)) {
      out[0] = c;
      return 1;
    }
    const int n = static_cast<int>(m & 15);
    for (int i = 0; i < n; ++i) out[i] = t.pool[(m >> 4) + static_cast<uint32_t>(i)];
    return n;
  }
  return ComputeLowerStrip(c, out);
}

}  // namespace uniter::tokenizer::internal
