// The whole BUTD feature extractor for one image: preprocessing, Backbone,
// ProposalGenerator (or given boxes), RoiHeads and BoxSelection, producing the
// arrays UNITER's img_db stores. CPU (Debian's LibTorch) in this build.
//
// Thread safety: Extract() is const and may run concurrently (LibTorch ops
// parallelize internally as well).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "extractor/config.h"

namespace uniter::extractor {

class FasterRcnnModel;

struct RegionFeatures {
  int image_height = 0, image_width = 0;
  int num_boxes = 0;
  int feature_dim = 0;               // 2048 for the real model
  int num_classes = 0;               // 1601 (with background)
  std::vector<float> features;       // [num_boxes, feature_dim], pool5_flat
  std::vector<float> boxes;          // [num_boxes, 4] x1, y1, x2, y2 image pixels
  std::vector<float> norm_bb;        // [num_boxes, 6] x1/w, y1/h, x2/w, y2/h, bw/w, bh/h
  std::vector<float> conf;           // [num_boxes], decreasing
  std::vector<float> soft_labels;    // [num_boxes, num_classes], cls_prob rows
  std::vector<int32_t> object_ids;   // best class in 1..C-1
  std::vector<float> object_conf;
  std::vector<int32_t> attr_ids;     // best attribute in 1..A-1 (empty without the head)
  std::vector<float> attr_conf;
};

// Wall time of each stage of one Extract() call, seconds.
struct StageTimes {
  double preprocess = 0, backbone = 0, proposals = 0, roi_heads = 0, selection = 0;
};

class Extractor {
 public:
  // Throws FormatError naming the first missing or mis-shaped blob.
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
