#include "tokenizer/normalizer.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "common/error.h"
#include "tokenizer/internal/unicode_props.h"

namespace uniter::tokenizer {

using namespace internal;  // NOLINT: the property predicates

std::u32string BertNormalizer::CleanText(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || IsBertControl(c)) continue;
    out.push_back(IsBertWhitespace(c) ? U' ' : c);
  }
  return out;
}

std::u32string BertNormalizer::PadChineseChars(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (IsChineseChar(c)) {
      out.push_back(U' ');
      out.push_back(c);
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string BertNormalizer::PyLower(std::u32string_view text) { return ::uniter::PyLower(text); }

std::u32string BertNormalizer::Nfd(std::u32string_view text) {
  static const icu::Normalizer2* nfd = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFDInstance(status);
    if (U_FAILURE(status)) throw Error(std::string("ICU NFD normalizer unavailable: ") + u_errorName(status));
    return n;
  }();
  const icu::UnicodeString in = icu::UnicodeString::fromUTF32(
      reinterpret_cast<const UChar32*>(text.data()), static_cast<int32_t>(text.size()));
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString d = nfd->normalize(in, status);
  if (U_FAILURE(status)) throw Error(std::string("ICU NFD failed: ") + u_errorName(status));
  std::u32string out;
  out.reserve(static_cast<size_t>(d.length()));
  for (int32_t i = 0; i < d.length();) {
    const UChar32 x = d.char32At(i);
    i += U16_LENGTH(x);
    out.push_back(static_cast<char32_t>(x));
  }
  return out;
}

std::u32string BertNormalizer::LowerStripAccents(std::u32string_view token) {
  const std::u32string d = Nfd(PyLower(token));
  std::u32string out;
  out.reserve(d.size());
  for (char32_t c : d)
    if (!IsNonSpacingMark(c)) out.push_back(c);
  return out;
}

}  // namespace uniter::tokenizer
