// UNITER's RE and VCR evaluation arithmetic (data/re.py:computeIoU,
// train_re.py:validate, train_vcr.py:validate/compute_accuracies,
// inf_vcr.py:save_for_submission), free of LibTorch so tests and tools can
// run it on any scores.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace uniter::trainer {

// computeIoU([x, y, w, h] pred, tgt) with its ±1-pixel intersection; the
// predicted box is float32 (img_pos_feat × size), sums of its fields stay
// float32 as numpy keeps them, the target is float64.
double ReIoU(const float pred[4], const double tgt[4]);

// An RE hit: IoU > 0.5.
bool ReHit(const float pred[4], const double tgt[4]);

// The first index of the largest score among the first `n` (torch.argmax).
int64_t ArgMax(const float* scores, int64_t n);

// One VCR example's scores as validate() views them: 8 (val: 4 QA + 4 QAR of
// the gt answer) or 20 (test: 4 QA + 4 × 4 QAR) logits.
struct VcrMetrics {
  int64_t n = 0;
  int64_t qa_correct = 0, qar_correct = 0, correct = 0;
  double qa_loss = 0, qar_loss = 0;  // summed cross entropies
  // Adds one example; targets −1 (the test split) count the example only.
  void Add(const std::vector<float>& scores, int64_t qa_target, int64_t qar_target);
  double acc_qa() const { return n ? static_cast<double>(qa_correct) / n : 0; }
  double acc_qar() const { return n ? static_cast<double>(qar_correct) / n : 0; }
  double acc() const { return n ? static_cast<double>(correct) / n : 0; }
};

// inf_vcr.py's save_for_submission: rows sorted by the number after the
// annot_id's '-', header annot_id,answer_0..3,rationale_conditioned_on_a{i}_{0..3}
// (20 columns; each example needs 20 scores), pandas' float format.
std::string VcrSubmissionCsv(const std::vector<std::pair<std::string, std::vector<float>>>& results);

}  // namespace uniter::trainer
