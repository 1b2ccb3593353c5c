// The network side of the BUTD extractor, without OpenCV: preprocessed image
// tensors in, RegionFeatures out. Loads the prototxt + caffemodel once onto
// the configured device in the configured precision (ExtractorConfig's
// device / precision / channels_last), runs the Backbone on a whole batch,
// the ProposalGenerator per image, the RoiHeads on every image's regions at
// once (each roi carries its batch index) and BoxSelection per image.
// Extractor (extractor.h) is cv::Mat -> Preprocess -> Detector; the GPU
// machine's build (scripts/device) uses Detector directly.
//
// Thread safety: after construction every method is const and may run
// concurrently (LibTorch parallelizes inside ops as well).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "extractor/config.h"
#include "extractor/internal/caffe_graph.h"
#include "extractor/region_features.h"

namespace uniter::extractor {

class FasterRcnnModel;

// One image of a batch: its original size and BUTD's resize factor
// (preprocess.h InputScale).
struct ImageInfo {
  int orig_height = 0, orig_width = 0;
  double scale = 1;
};

class Detector {
 public:
  // Throws FormatError naming the first missing or mis-shaped blob, UsageError
  // for bad box limits or a device / precision this build or machine cannot
  // run (a CUDA device with Debian's CPU LibTorch, say).
  Detector(const std::string& prototxt, const std::string& caffemodel, const ExtractorConfig& config);
  ~Detector();

  // `input`: float32 [B,3,H,W] on any device, BUTD's blob (BGR minus the
  // pixel means, resized); `images`: its B images. Returns B results in
  // order, every array fp32 on the CPU. Throws UsageError for mismatched
  // sizes, Error when an image gets no region proposal.
  std::vector<RegionFeatures> Detect(const at::Tensor& input, const std::vector<ImageInfo>& images,
                                     StageTimes* times = nullptr) const;
  // Features for given boxes ([N,4] x1, y1, x2, y2 in original pixels) of one
  // image (`input` [1,3,H,W]), skipping the RPN and the selection.
  RegionFeatures DetectBoxes(const at::Tensor& input, const ImageInfo& image, const std::vector<float>& boxes,
                             StageTimes* times = nullptr) const;
  // The forward pass alone: every blob by its prototxt name, on the device
  // in the types the graph left them (tests, benchmarks). `given_rois`: [K,5]
  // (batch index, x1, y1, x2, y2 in input pixels), or nullptr for the RPN.
  internal::BlobMap Forward(const at::Tensor& input, const std::vector<ImageInfo>& images,
                            const at::Tensor* given_rois, StageTimes* times = nullptr) const;

  const ExtractorConfig& config() const;
  const FasterRcnnModel& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace uniter::extractor
