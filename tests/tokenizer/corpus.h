// Test corpora and the Python references for the tokenizer tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace uniter::tokenizer::testing {

// NLVR2 dev + test1 "sentence" fields (JSON lines), in file order.
std::vector<std::string> Nlvr2Sentences();
// Conceptual Captions validation captions (TSV caption \t url).
std::vector<std::string> CcCaptions();
// The Unicode torture corpus: hand-picked hard cases plus seeded random lines
// (deterministic). Lines contain no '\n'; some are not valid UTF-8.
std::vector<std::string> TortureLines();
// Every code point (surrogates excluded) inside words "a<c>b", 64 per line.
std::vector<std::string> AllCodePointLines();

std::string VocabPath(bool cased);

// Runs tests/tokenizer/bert_reference.py (impl "ppb" or "hf") over `lines`;
// returns one id list per line. Throws std::runtime_error when it fails.
// `save_json`: where hf writes its tokenizer.json (optional).
std::vector<std::vector<int32_t>> ReferenceIds(const std::string& impl, const std::string& vocab, bool lower,
                                               const std::vector<std::string>& lines,
                                               const std::string& save_json = "");

// The line with control and non-ASCII bytes escaped, for failure messages.
std::string Escape(const std::string& s);

}  // namespace uniter::tokenizer::testing
