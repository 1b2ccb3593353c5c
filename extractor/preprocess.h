// BUTD's image preprocessing (lib/fast_rcnn/test.py _get_image_blob): BGR
// float, minus the pixel means, scaled so the short side is target_size unless
// the long side would then exceed max_size (tested on the rounded size), one
// cv::resize with INTER_LINEAR and fx = fy = scale.
#pragma once

#include <opencv2/core.hpp>

#include <utility>

#include "extractor/config.h"

namespace uniter::extractor {

struct PreprocessedImage {
  cv::Mat blob;      // CV_32FC3, BGR, mean-subtracted, resized (HWC)
  double scale = 1;  // resized / original
  int orig_height = 0, orig_width = 0;
};

// The network input size {height, width} BUTD's resize gives an image of
// `height` x `width` (cv::resize rounds the scaled sizes). Images with equal
// input sizes can share one batch with no padding.
std::pair<int, int> InputSize(int height, int width, const ExtractorConfig& config);
// The resize factor BUTD picks for an image of `height` x `width`.
double InputScale(int height, int width, const ExtractorConfig& config);

// `bgr`: CV_8UC3. Throws Error for an empty or non-3-channel image.
PreprocessedImage Preprocess(const cv::Mat& bgr, const ExtractorConfig& config);

}  // namespace uniter::extractor
