// NLVR2's official metrics, as UNITER's scripts/eval_nlvr2.py (a copy of
// lil-lab's nlvr2 evaluation) computes them:
//   accuracy    = predictions equal to the label (case-insensitive) / examples
//   consistency = sentences whose every example is correct / sentences, a
//                 sentence being an identifier with its third '-' field blanked
//                 ("dev-850-0-0" -> "dev-850--0").
// Prediction files are UNITER's results.csv: `identifier,prediction` lines; a
// later line for the same identifier wins. LibTorch-free.
#pragma once

#include <cstdint>
#include <string>

namespace uniter::trainer {

struct Nlvr2Metrics {
  double accuracy = 0;
  double consistency = 0;
  int64_t examples = 0;   // labelled examples
  int64_t correct = 0;
  int64_t sentences = 0;  // consistency groups
  int64_t consistent = 0;
};

// Scores `results_csv` against the JSON-lines annotations `annotations`
// (NLVR2's dev.json / test1.json: "identifier" and "label" per line).
// Throws IoError (unreadable file), FormatError (bad line, naming file and
// line) or UsageError (a labelled example without a prediction; the script
// prints the missing ids and exits, we name the first ones and fail).
Nlvr2Metrics EvalNlvr2(const std::string& results_csv, const std::string& annotations);

// "accuracy=<v>\nconsistency=<v>\n" with Python's str(float), byte for byte
// what eval_nlvr2.py prints.
std::string FormatNlvr2Metrics(const Nlvr2Metrics& m);

}  // namespace uniter::trainer
