#include "extractor/preprocess.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace uniter::extractor {

double InputScale(int height, int width, const ExtractorConfig& config) {
  const double size_min = std::min(height, width), size_max = std::max(height, width);
  double scale = static_cast<double>(config.target_size) / size_min;
  // np.round (half to even) of the scaled long side, as BUTD tests it.
  if (std::nearbyint(scale * size_max) > config.max_size) scale = static_cast<double>(config.max_size) / size_max;
  return scale;
}

std::pair<int, int> InputSize(int height, int width, const ExtractorConfig& config) {
  const double scale = InputScale(height, width, config);
  // cv::resize with fx, fy: dsize = saturate_cast<int>(size * f), i.e. cvRound.
  return {cv::saturate_cast<int>(height * scale), cv::saturate_cast<int>(width * scale)};
}

PreprocessedImage Preprocess(const cv::Mat& bgr, const ExtractorConfig& config) {
  if (bgr.empty() || bgr.type() != CV_8UC3)
    throw Error("image must be 8-bit BGR with 3 channels");
  PreprocessedImage out;
  out.orig_height = bgr.rows;
  out.orig_width = bgr.cols;
  // numpy: float32 image minus float64 means, stored back as float32.
  cv::Mat f(bgr.rows, bgr.cols, CV_32FC3);
  for (int y = 0; y < bgr.rows; ++y) {
    const uint8_t* src = bgr.ptr<uint8_t>(y);
    float* dst = f.ptr<float>(y);
    for (int x = 0; x < bgr.cols * 3; ++x)
      dst[x] = static_cast<float>(static_cast<double>(src[x]) - config.pixel_means[x % 3]);
  }
  const double scale = InputScale(bgr.rows, bgr.cols, config);
  cv::resize(f, out.blob, cv::Size(), scale, scale, cv::INTER_LINEAR);
  out.scale = scale;
  return out;
}

}  // namespace uniter::extractor
