// The pre-tokenizer stage: where text is cut into words and pieces, with
// Python's notion of whitespace (str.split) and BERT's of punctuation.
// All functions are pure and thread safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace uniter::tokenizer {

// UNITER's `text.strip().split()` on UTF-8: the maximal runs of characters
// that are not str.isspace(), as views into `text`. Ill-formed bytes are not
// whitespace (they stay inside their word).
std::vector<std::string_view> SplitWords(std::string_view text);

// pytorch-pretrained-bert's whitespace_tokenize (str.strip().split()) on code points.
std::vector<std::u32string> WhitespaceTokenize(std::u32string_view text);

// _run_split_on_punc: every punctuation character becomes its own piece.
std::vector<std::u32string> SplitOnPunctuation(std::u32string_view text);

}  // namespace uniter::tokenizer
