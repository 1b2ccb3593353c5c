// The answer vocabularies of UNITER's soft-target tasks: VQA's
// utils/ans2label.json ({answer: index}, read back as label2ans) and VE's
// three labels (data/ve.py: contradiction 0, entailment 1, neutral 2).
// LibTorch-free.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace uniter::trainer {

// ans2label.json as json.load reads it: (answer, index) in the file's order.
// IoError when unreadable; FormatError (naming the file) unless an object
// whose indices are 0..n-1, each once.
std::vector<std::pair<std::string, int64_t>> ReadAns2Label(const std::string& ans2label_path);

// ans2label.json inverted: element i is the answer with index i. IoError when
// unreadable; FormatError (naming the file) unless the indices are 0..n-1.
std::vector<std::string> ReadLabel2Ans(const std::string& ans2label_path);

// VE's label names by index.
inline const std::vector<std::string>& VeLabels() {
  static const std::vector<std::string> kLabels = {"contradiction", "entailment", "neutral"};
  return kLabels;
}

}  // namespace uniter::trainer
