// The whole BUTD feature extractor: cv::Mat images -> BUTD preprocessing
// (preprocess.h) -> Detector (detector.h: Backbone, ProposalGenerator or
// given boxes, RoiHeads, BoxSelection), producing the arrays UNITER's img_db
// stores. Runs where ExtractorConfig::device says ("cpu", or "cuda:N" with a
// CUDA LibTorch), in its precision and memory format.
//
// Thread safety: Extract() is const and may run concurrently (LibTorch ops
// parallelize internally as well).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "extractor/config.h"
#include "extractor/region_features.h"

namespace uniter::extractor {

class Extractor {
 public:
  // Throws FormatError naming the first missing or mis-shaped blob, and
  // UsageError for a device or precision that cannot run here.
  Extractor(const std::string& prototxt, const std::string& caffemodel, const ExtractorConfig& config);
  ~Extractor();

  // `bgr`: CV_8UC3. Throws Error on a bad image. `times`, when given,
  // receives the stage timings (benchmarks).
  RegionFeatures Extract(const cv::Mat& bgr, StageTimes* times = nullptr) const;
  // Extract() of several images in one forward pass. Every image must have
  // the same InputSize() (preprocess.h), so no padding changes a feature;
  // throws UsageError otherwise. Results in input order.
  std::vector<RegionFeatures> ExtractBatch(const std::vector<cv::Mat>& bgr, StageTimes* times = nullptr) const;
  const ExtractorConfig& config() const;
  // Features for given boxes ([N,4] x1, y1, x2, y2 image pixels), skipping
  // the RPN and the selection (test_gt.prototxt style).
  RegionFeatures ExtractBoxes(const cv::Mat& bgr, const std::vector<float>& boxes) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace uniter::extractor
