#include "extractor/extractor.h"

#include <torch/torch.h>

#include <chrono>

#include "common/error.h"
#include "extractor/detector.h"
#include "extractor/preprocess.h"

namespace uniter::extractor {
namespace {

// Preprocessed HWC blobs of equal size as one [B,3,H,W] view of a [B,H,W,3]
// tensor: NHWC already, so channels-last input needs no further copy.
at::Tensor Stack(const std::vector<PreprocessedImage>& imgs) {
  std::vector<at::Tensor> hwc;
  for (const PreprocessedImage& img : imgs) {
    const cv::Mat& m = img.blob;
    if (!m.isContinuous()) throw Error("preprocessed image is not one continuous block");
    hwc.push_back(torch::from_blob(const_cast<float*>(m.ptr<float>()), {m.rows, m.cols, 3}, torch::kFloat));
  }
  return torch::stack(hwc).permute({0, 3, 1, 2});
}

ImageInfo Info(const PreprocessedImage& img) { return {img.orig_height, img.orig_width, img.scale}; }

}  // namespace

struct Extractor::Impl {
  explicit Impl(const std::string& prototxt, const std::string& caffemodel, const ExtractorConfig& config)
      : detector(prototxt, caffemodel, config) {}
  Detector detector;
};

Extractor::Extractor(const std::string& prototxt, const std::string& caffemodel, const ExtractorConfig& config)
    : impl_(new Impl(prototxt, caffemodel, config)) {}

Extractor::~Extractor() = default;

RegionFeatures Extractor::Extract(const cv::Mat& bgr, StageTimes* times) const {
  return std::move(ExtractBatch({bgr}, times).front());
}

std::vector<RegionFeatures> Extractor::ExtractBatch(const std::vector<cv::Mat>& bgr, StageTimes* times) const {
  if (bgr.empty()) return {};
  const ExtractorConfig& config = impl_->detector.config();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<PreprocessedImage> imgs;
  std::vector<ImageInfo> infos;
  for (const cv::Mat& m : bgr) {
    imgs.push_back(Preprocess(m, config));
    infos.push_back(Info(imgs.back()));
    if (imgs.back().blob.size() != imgs.front().blob.size())
      throw UsageError("ExtractBatch: images of different network input sizes (" +
                       std::to_string(imgs.front().blob.rows) + "x" + std::to_string(imgs.front().blob.cols) +
                       " and " + std::to_string(imgs.back().blob.rows) + "x" +
                       std::to_string(imgs.back().blob.cols) + ")");
  }
  const at::Tensor input = Stack(imgs);
  if (times) times->preprocess += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return impl_->detector.Detect(input, infos, times);
}

const ExtractorConfig& Extractor::config() const { return impl_->detector.config(); }

RegionFeatures Extractor::ExtractBoxes(const cv::Mat& bgr, const std::vector<float>& boxes) const {
  if (boxes.size() % 4) throw UsageError("given boxes must be 4 numbers each");
  const PreprocessedImage img = Preprocess(bgr, impl_->detector.config());
  return impl_->detector.DetectBoxes(Stack({img}), Info(img), boxes);
}

}  // namespace uniter::extractor
