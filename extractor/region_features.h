// What the extractor produces per image, and its stage timings. No OpenCV and
// no LibTorch here: the GPU machine's build (scripts/device) includes it too.
#pragma once

#include <cstdint>
#include <vector>

namespace uniter::extractor {

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

// Wall time of the stages of Extract()/Detect() calls, seconds, summed over
// calls (a batch counts once). On a GPU the stages synchronize the device when
// timings are asked for, so the split is true but the total slightly slower.
struct StageTimes {
  double preprocess = 0, backbone = 0, proposals = 0, roi_heads = 0, selection = 0;
};

}  // namespace uniter::extractor
