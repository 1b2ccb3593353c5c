// BUTD's region selection (tools/generate_tsv.py get_detections_from_im):
// per-class NMS over classes 1..C-1 on the unregressed ROI boxes, each
// region's confidence = its best class score among the classes that kept it,
// regions with confidence >= conf_threshold, then at least min_boxes and at
// most max_boxes (by confidence). The result is sorted by decreasing
// confidence (UNITER keeps the first rows). Ties in confidence keep the lower
// region index first (numpy's argsort leaves them unspecified).
#pragma once

#include <cstdint>
#include <vector>

#include "extractor/config.h"

namespace at {
class Tensor;
}

namespace uniter::extractor {

struct BoxSelection {
  std::vector<int64_t> index;  // selected regions, by decreasing confidence
  std::vector<float> conf;     // their confidences
};

// `boxes` [N,4] float32 in image pixels, `cls_prob` [N,C] (column 0 =
// background), both on one device (the per-class NMS runs there: ops/nms.h).
// Thread safety: pure function.
BoxSelection SelectBoxes(const at::Tensor& boxes, const at::Tensor& cls_prob, const ExtractorConfig& config);

}  // namespace uniter::extractor
