#include "extractor/box_selection.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "extractor/ops/nms.h"

namespace uniter::extractor {

BoxSelection SelectBoxes(const at::Tensor& boxes, const at::Tensor& cls_prob, const ExtractorConfig& config) {
  const int64_t n = boxes.size(0);
  const at::Tensor scores = cls_prob.slice(1, 1).to(torch::kFloat).contiguous();
  const at::Tensor kept =
      ops::MultiClassNmsMask(boxes, scores, {config.nms_threshold, ops::BoxConvention::kCaffe});
  // Best score among the classes whose NMS kept the region (0 if none did).
  // On a GPU the mask and this reduction stay there; only N floats come back.
  const at::Tensor max_conf =
      torch::where(kept, scores, torch::zeros_like(scores)).amax(1).to(torch::kCPU, torch::kFloat).contiguous();
  const float* c = max_conf.data_ptr<float>();
  std::vector<int64_t> by_conf(n);
  std::iota(by_conf.begin(), by_conf.end(), 0);
  std::stable_sort(by_conf.begin(), by_conf.end(), [&](int64_t a, int64_t b) { return c[a] > c[b]; });
  int64_t above = 0;
  for (int64_t i = 0; i < n; ++i) above += static_cast<double>(c[i]) >= config.conf_threshold;
  const int64_t count = std::min<int64_t>(n, std::clamp<int64_t>(above, config.min_boxes, config.max_boxes));
  BoxSelection out;
  // With count == above the selection is exactly the regions >= threshold.
  out.index.assign(by_conf.begin(), by_conf.begin() + count);
  for (int64_t i : out.index) out.conf.push_back(c[i]);
  return out;
}

}  // namespace uniter::extractor
