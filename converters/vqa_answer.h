// VQA answer normalisation and soft scores, as the official VQA evaluation
// (GT-Vision-Lab/VQA vqaEval.py) and UNITER's preprocessing apply them.
#pragma once

#include <string>
#include <string_view>

namespace uniter::converters {

// processPunctuation: strips or spaces out the evaluation's punctuation marks,
// then removes periods not followed by a digit (at most 32 of them: the
// official code passes re.UNICODE where re.sub expects `count`).
std::string VqaProcessPunctuation(std::string_view text);

// processDigitArticle: lower-cases (Python's str.lower()), splits on Python's
// whitespace, maps number words to digits,
// drops articles, restores contractions, joins words with one space.
std::string VqaProcessDigitArticle(std::string_view text);

// The normalisation answers get before they are counted and looked up in
// ans2label: punctuation, then digits/articles, then commas removed.
std::string NormalizeVqaAnswer(std::string_view answer);

// Soft score of an answer `count` of the 10 annotators gave: the official
// accuracy averaged over the 10 leave-one-out subsets, min(1, matches/3):
// 0, 0.3, 0.6, 0.9, then 1.
double VqaScore(int count);

}  // namespace uniter::converters
