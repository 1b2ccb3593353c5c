// The official VQA accuracy (GT-Vision-Lab/VQA vqaEval.py) of a VQA results
// file ([{"answer", "question_id"}], as UNITER's inf_vqa.py and
// `uniter infer vqa` write it) against VQA v2 annotations
// ({"annotations": [{"question_id", "answers": [{"answer", "answer_id"}, ...]}]}).
// Per question, as vqaEval.evaluate(): the predicted answer gets \n/\t → ' ',
// strip, processPunctuation, processDigitArticle; the human answers get
// processPunctuation only, and only when they are not all equal; accuracy =
// mean over each human left out of min(1, #other humans matching / 3).
// The normalisation itself is injected (trainer may not depend on
// converters, where it lives). LibTorch-free.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace uniter::trainer {

struct VqaNormalizer {
  std::function<std::string(std::string_view)> process_punctuation;
  std::function<std::string(std::string_view)> process_digit_article;
};

struct VqaMetrics {
  double accuracy = 0;  // mean per-question accuracy, 0..1
  double overall = 0;   // vqaEval's accuracy['overall']: round(100 * accuracy, 2)
  int64_t questions = 0;
};

// Every annotated question needs exactly one prediction and every prediction
// an annotation (vqaEval's loadRes asserts the same). Throws IoError,
// FormatError (naming the file and question) or UsageError.
VqaMetrics EvalVqa(const std::string& results_json, const std::string& annotations_json, const VqaNormalizer& norm);

// "accuracy=<v>\noverall=<v>\nquestions=<n>\n", floats as Python's str().
std::string FormatVqaMetrics(const VqaMetrics& m);

}  // namespace uniter::trainer
