#include "tokenizer/pre_tokenizer.h"

#include "tokenizer/internal/unicode_props.h"
#include "common/utf8.h"

namespace uniter::tokenizer {

std::vector<std::string_view> SplitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t start = 0;
  bool in_word = false;
  for (size_t i = 0, len = 0; i < text.size(); i += len) {
    const char32_t c = DecodeUtf8(text, i, &len);
    const bool space = internal::IsPySpace(c);
    if (space && in_word) {
      words.push_back(text.substr(start, i - start));
      in_word = false;
    } else if (!space && !in_word) {
      start = i;
      in_word = true;
    }
  }
  if (in_word) words.push_back(text.substr(start));
  return words;
}

std::vector<std::u32string> WhitespaceTokenize(std::u32string_view text) {
  std::vector<std::u32string> out;
  std::u32string cur;
  bool in_word = false;
  for (char32_t c : text) {
    if (internal::IsPySpace(c)) {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

std::vector<std::u32string> SplitOnPunctuation(std::u32string_view text) {
  std::vector<std::u32string> out;
  bool start_new = true;
  for (char32_t c : text) {
    if (internal::IsBertPunctuation(c)) {
      out.emplace_back(1, c);
      start_new = true;
    } else {
      if (start_new) out.emplace_back();
      start_new = false;
      out.back().push_back(c);
    }
  }
  return out;
}

}  // namespace uniter::tokenizer
