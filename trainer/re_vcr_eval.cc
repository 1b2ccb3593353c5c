#include "trainer/re_vcr_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"

namespace uniter::trainer {

double ReIoU(const float pred[4], const double tgt[4]) {
  const double ix1 = std::max<double>(pred[0], tgt[0]);
  const double iy1 = std::max<double>(pred[1], tgt[1]);
  const double ix2 = std::min<double>(pred[0] + pred[2] - 1.0f, tgt[0] + tgt[2] - 1);
  const double iy2 = std::min<double>(pred[1] + pred[3] - 1.0f, tgt[1] + tgt[3] - 1);
  const double inter = ix1 < ix2 && iy1 < iy2 ? (ix2 - ix1 + 1) * (iy2 - iy1 + 1) : 0.0;
  const double uni = static_cast<double>(pred[2] * pred[3]) + tgt[2] * tgt[3] - inter;
  return inter / uni;
}

bool ReHit(const float pred[4], const double tgt[4]) { return ReIoU(pred, tgt) > 0.5; }

int64_t ArgMax(const float* scores, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (scores[i] > scores[best] || (std::isnan(scores[i]) && !std::isnan(scores[best]))) best = i;
  return best;
}

namespace {
// F.cross_entropy of one row: logsumexp − the target's logit.
double CrossEntropy(const float* s, int64_t n, int64_t target) {
  double m = s[0];
  for (int64_t i = 1; i < n; ++i) m = std::max<double>(m, s[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(s[i] - m);
  return m + std::log(sum) - s[target];
}
}  // namespace

void VcrMetrics::Add(const std::vector<float>& scores, int64_t qa_target, int64_t qar_target) {
  ++n;
  if (qa_target < 0) return;  // inf_vcr: no targets on the test split
  if (scores.size() != 8 && scores.size() != 20)
    throw UsageError("a VCR example needs 8 or 20 scores, has " + std::to_string(scores.size()));
  if (qa_target > 3 || qar_target < 0 || qar_target > 3) throw UsageError("VCR targets must be in 0..3");
  float qar[4];
  for (int i = 0; i < 4; ++i) qar[i] = scores.size() > 8 ? scores[4 + qa_target * 4 + i] : scores[4 + i];
  qa_loss += CrossEntropy(scores.data(), 4, qa_target);
  qar_loss += CrossEntropy(qar, 4, qar_target);
  const bool a = ArgMax(scores.data(), 4) == qa_target, r = ArgMax(qar, 4) == qar_target;
  qa_correct += a;
  qar_correct += r;
  correct += a && r;
}

std::string VcrSubmissionCsv(const std::vector<std::pair<std::string, std::vector<float>>>& results) {
  auto order = [](const std::string& id) {
    const size_t dash = id.find('-');
    try {
      return std::stoll(id.substr(dash == std::string::npos ? 0 : dash + 1));
    } catch (const std::exception&) {
      throw FormatError("annot_id has no number after '-'", id);
    }
  };
  std::vector<size_t> idx(results.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return order(results[a].first) < order(results[b].first); });
  std::string out = "annot_id";
  for (const char* g : {"answer", "rationale_conditioned_on_a0", "rationale_conditioned_on_a1",
                        "rationale_conditioned_on_a2", "rationale_conditioned_on_a3"})
    for (int i = 0; i < 4; ++i) out += std::string(",") + g + "_" + std::to_string(i);
  out += "\n";
  char buf[64];
  for (size_t i : idx) {
    const auto& [id, s] = results[i];
    if (s.size() != 20) throw UsageError("the submission csv needs 20 scores per example (the test layout): " + id);
    out += id;
    // pandas writes float64 values as repr does (shortest round trip): the float32 logits widened.
    for (float v : s) {
      double back = 0;
      for (int prec = 1; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof(buf), "%.*g", prec, static_cast<double>(v));
        back = std::strtod(buf, nullptr);
        if (back == static_cast<double>(v)) break;
      }
      std::string t = buf;
      if (t.find_first_of(".en") == std::string::npos) t += ".0";
      out += "," + t;
    }
    out += "\n";
  }
  return out;
}

}  // namespace uniter::trainer
