// SNLI-VE accuracy of a VE results file ({pairID: label}, as UNITER's
// train_ve.py and `uniter infer ve` write it). UNITER ships no VE evaluation
// script; its in-training metric is the target score at the argmax, which
// for VE's one-hot targets is this accuracy. LibTorch-free.
#pragma once

#include <cstdint>
#include <string>

namespace uniter::trainer {

struct VeMetrics {
  double accuracy = 0;
  int64_t examples = 0;  // labelled examples
  int64_t correct = 0;
};

// Scores `results_json` against `labels`: either a VE txt_db folder (each
// example's gold label = its target label with the highest score) or an
// SNLI-VE JSON-lines file ("pairID" and "gold_label" per line). Labels are
// compared exactly ("entailment", "neutral", "contradiction"). Throws
// IoError, FormatError (naming file and line/record) or UsageError (a
// labelled example without a prediction, the first ones named).
VeMetrics EvalVe(const std::string& results_json, const std::string& labels);

// "accuracy=<v>\nexamples=<n>\ncorrect=<n>\n", the float as Python's str().
std::string FormatVeMetrics(const VeMetrics& m);

}  // namespace uniter::trainer
