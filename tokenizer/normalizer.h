// The BERT normalizer stage, step by step as pytorch-pretrained-bert 0.6.2's
// BasicTokenizer runs it: _clean_text, _tokenize_chinese_chars, and per basic
// token str.lower() + _run_strip_accents. Works on code points; the fused fast
// path in bert_tokenizer.cc must give the same result (tests check it).
// All functions are pure and thread safe.
#pragma once

#include <string>
#include <string_view>

namespace uniter::tokenizer {

class BertNormalizer {
 public:
  // Drops U+0000, U+FFFD and control characters (category C* except \t \n \r)
  // and maps BERT whitespace (space, \t, \n, \r, Zs) to a space.
  static std::u32string CleanText(std::u32string_view text);
  // Puts a space on both sides of each CJK ideograph (BERT's block list).
  static std::u32string PadChineseChars(std::u32string_view text);
  // Python 3.11's str.lower(): full mapping (U+0130 -> "i\u0307") and the
  // Final_Sigma rule for U+03A3.
  static std::u32string PyLower(std::u32string_view text);
  // NFD (ICU).
  static std::u32string Nfd(std::u32string_view text);
  // token.lower(), then NFD, then every Mn character removed.
  static std::u32string LowerStripAccents(std::u32string_view token);
};

}  // namespace uniter::tokenizer
