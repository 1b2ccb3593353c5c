// The network side (detector.h) on the narrow synthetic model and real
// photos: one batched forward pass equals single-image runs; channels-last
// equals NCHW; bf16 (and fp16 where this LibTorch's CPU kernels have it) stays
// within a measured tolerance of fp32; devices this build cannot run are a
// UsageError naming them.
#include <torch/cuda.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "extractor/detector.h"
#include "extractor/extractor.h"
#include "extractor/preprocess.h"
#include "extractor/synthetic_model.h"
#include "tests/extractor/compare_util.h"
#include "tests/test_util.h"

namespace uniter::extractor {
namespace {

using ::uniter::testing::SharedDataDir;
using ::uniter::testing::TempDir;

// max |a - b| / max |b|, sizes checked.
double RelErr(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return compare::RelErr(a, b);
}

using compare::Iou;

// Share of `want`'s first `top` boxes that `got` has a box of IoU >= `iou` for.
double TopBoxRecall(const RegionFeatures& got, const RegionFeatures& want, int top, double iou = 0.9) {
  const int n = std::min(top, want.num_boxes);
  int found = 0;
  for (int i = 0; i < n; ++i) {
    bool hit = false;
    for (int j = 0; j < got.num_boxes && !hit; ++j) hit = Iou(&want.boxes[4 * i], &got.boxes[4 * j]) >= iou;
    found += hit;
  }
  return n ? static_cast<double>(found) / n : 1.0;
}

class DetectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("detector"));
    compare::WriteNarrowModel(SharedDataDir() + "/butd/test.prototxt", *dir_);
  }
  static Extractor Make(const ExtractorConfig& config) {
    return Extractor(*dir_ + "/narrow.prototxt", *dir_ + "/narrow.caffemodel", config);
  }
  // The first three coco-mini photos sharing one network input size.
  static std::vector<cv::Mat> SameSizePhotos() {
    std::vector<std::string> paths;
    for (const auto& e : std::filesystem::directory_iterator(SharedDataDir() + "/coco-mini/val2017"))
      paths.push_back(e.path().string());
    std::sort(paths.begin(), paths.end());
    std::map<std::pair<int, int>, std::vector<cv::Mat>> by_size;
    for (const std::string& p : paths) {
      cv::Mat m = cv::imread(p, cv::IMREAD_COLOR);
      if (m.empty()) continue;
      auto& group = by_size[InputSize(m.rows, m.cols, ExtractorConfig{})];
      group.push_back(m);
      if (group.size() == 3) return group;
    }
    return {};
  }
  static cv::Mat Photo() { return cv::imread(SharedDataDir() + "/butd/images/000456.jpg", cv::IMREAD_COLOR); }
  static std::string* dir_;
};
std::string* DetectorTest::dir_ = nullptr;

TEST_F(DetectorTest, BatchOfThreeEqualsThreeSingleRuns) {
  const std::vector<cv::Mat> photos = SameSizePhotos();
  ASSERT_EQ(photos.size(), 3u) << "coco-mini has no three photos of one input size";
  const Extractor ex = Make(ExtractorConfig{});
  const std::vector<RegionFeatures> batch = ex.ExtractBatch(photos);
  ASSERT_EQ(batch.size(), 3u);
  for (size_t i = 0; i < photos.size(); ++i) {
    const RegionFeatures one = ex.Extract(photos[i]);
    const RegionFeatures& b = batch[i];
    EXPECT_EQ(b.image_height, photos[i].rows);
    EXPECT_EQ(b.image_width, photos[i].cols);
    ASSERT_EQ(b.num_boxes, one.num_boxes) << "image " << i;
    EXPECT_GE(b.num_boxes, 10);
    EXPECT_EQ(b.boxes, one.boxes) << "image " << i;
    const double feat = RelErr(b.features, one.features), prob = RelErr(b.soft_labels, one.soft_labels);
    std::printf("image %zu: %d boxes, batch-vs-single rel err features %.2e soft_labels %.2e conf %.2e\n", i,
                b.num_boxes, feat, prob, RelErr(b.conf, one.conf));
    EXPECT_LT(feat, 1e-5);
    EXPECT_LT(prob, 1e-5);
    EXPECT_LT(RelErr(b.conf, one.conf), 1e-5);
    EXPECT_EQ(b.object_ids, one.object_ids);
  }
  // The three images are different photos: their results must differ too.
  EXPECT_NE(batch[0].boxes, batch[1].boxes);
}

TEST_F(DetectorTest, BatchOfDifferentInputSizesIsUsageError) {
  const Extractor ex = Make(ExtractorConfig{});
  const cv::Mat a = Photo();
  cv::Mat b;
  cv::transpose(a, b);
  ASSERT_NE(InputSize(a.rows, a.cols, ex.config()), InputSize(b.rows, b.cols, ex.config()));
  EXPECT_THROW(ex.ExtractBatch({a, b}), UsageError);
}

TEST_F(DetectorTest, ChannelsLastEqualsNchw) {
  const cv::Mat bgr = Photo();
  ExtractorConfig cl;
  cl.channels_last = true;
  const RegionFeatures want = Make(ExtractorConfig{}).Extract(bgr);
  const RegionFeatures got = Make(cl).Extract(bgr);
  ASSERT_EQ(got.num_boxes, want.num_boxes);
  // Other convolution kernels round differently: the RPN deltas move boxes by
  // float ulps, the same regions are selected.
  float box_diff = 0;
  for (size_t i = 0; i < got.boxes.size(); ++i) box_diff = std::max(box_diff, std::abs(got.boxes[i] - want.boxes[i]));
  const double feat = RelErr(got.features, want.features), prob = RelErr(got.soft_labels, want.soft_labels);
  std::printf("channels-last vs NCHW (fp32): boxes max |diff| %.1e px, rel err features %.2e soft_labels %.2e\n",
              box_diff, feat, prob);
  // 1e-5 of the image size: LibTorch 2.11's kernels differ by 1.3e-3 px on a 640 px photo.
  EXPECT_LT(box_diff, 1e-5 * std::max(bgr.rows, bgr.cols));
  EXPECT_LT(feat, 1e-5);
  // Peaked class scores make the softmax the most sensitive output; NCHW
  // itself is 3.7e-5 from OpenCV's (network_test.cc).
  EXPECT_LT(prob, 1e-4);
}

// Reduced precision against fp32: features of the same boxes (given-box mode
// on fp32's selection) and the boxes each selects.
// On random synthetic weights the RPN scores are nearly flat and the class
// scores peaked, so rounding noise reorders proposals and moves the softmax
// far more than on a trained net: box agreement is checked loosely (bounds
// below what was measured here: bf16 40% / 78%).
void CompareWithFp32(const std::string& precision, const Extractor& fp32, const Extractor& low, const cv::Mat& bgr,
                     double feature_tol) {
  const RegionFeatures want = fp32.Extract(bgr);
  const RegionFeatures same_boxes = low.ExtractBoxes(bgr, want.boxes);
  const RegionFeatures own = low.Extract(bgr);
  const double feat = RelErr(same_boxes.features, want.features);
  const double prob = RelErr(same_boxes.soft_labels, want.soft_labels);
  const double recall = TopBoxRecall(own, want, 10);
  std::printf("%s vs fp32: rel err features %.2e soft_labels %.2e (same boxes); fp32's top-10 boxes selected "
              "too (IoU >= 0.9) %.0f%%, all %d boxes %.0f%% (IoU >= 0.5: %.0f%%); %d vs %d boxes\n",
              precision.c_str(), feat, prob, 100 * recall, want.num_boxes,
              100 * TopBoxRecall(own, want, want.num_boxes), 100 * TopBoxRecall(own, want, want.num_boxes, 0.5),
              own.num_boxes, want.num_boxes);
  EXPECT_LT(feat, feature_tol);
  EXPECT_GE(recall, 0.3);
  EXPECT_GE(TopBoxRecall(own, want, want.num_boxes, 0.5), 0.6);
  for (float v : own.soft_labels) ASSERT_TRUE(std::isfinite(v));
  for (float v : own.norm_bb) {
    EXPECT_GE(v, 0.f);
    EXPECT_LE(v, 1.f);
  }
}

TEST_F(DetectorTest, Bf16FeaturesCloseToFp32) {
  ExtractorConfig bf16;
  bf16.precision = "bf16";
  const Extractor fp32 = Make(ExtractorConfig{}), low = Make(bf16);
  // Measured here: 1.05e-2 (bf16 keeps 8 mantissa bits).
  CompareWithFp32("bf16", fp32, low, Photo(), 3e-2);
}

TEST_F(DetectorTest, Fp16FeaturesCloseToFp32) {
  ExtractorConfig fp16;
  fp16.precision = "fp16";
  const Extractor fp32 = Make(ExtractorConfig{}), low = Make(fp16);
  try {
    low.Extract(Photo());
  } catch (const c10::Error& e) {
    const std::string what = e.what();
    GTEST_SKIP() << "this LibTorch (" << TORCH_VERSION << ") cannot run the net in fp16 on the CPU: "
                 << what.substr(0, what.find('\n'));
  }
  CompareWithFp32("fp16", fp32, low, Photo(), 1e-2);  // issue #5's target
}

TEST_F(DetectorTest, DeviceThisBuildCannotRunIsUsageError) {
  ExtractorConfig config;
  config.device = torch::cuda::is_available() ? "cuda:99" : "cuda:0";
  try {
    Make(config);
    FAIL() << "no error for device " << config.device;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + config.device + "'"), std::string::npos) << e.what();
  }
  config.device = "tpu";
  EXPECT_THROW(Make(config), UsageError);
  config.device = "cpu";
  config.precision = "fp8";
  EXPECT_THROW(Make(config), UsageError);
}

// The tensor API alone (what the GPU machine's benchmark uses): a [B,3,H,W]
// tensor gives what Extractor gives for the same image.
TEST_F(DetectorTest, TensorInputMatchesExtractor) {
  const cv::Mat bgr = Photo();
  const ExtractorConfig config;
  const PreprocessedImage img = Preprocess(bgr, config);
  const at::Tensor input =
      torch::from_blob(const_cast<float*>(img.blob.ptr<float>()), {1, img.blob.rows, img.blob.cols, 3}, torch::kFloat)
          .permute({0, 3, 1, 2})
          .contiguous();
  const Detector det(*dir_ + "/narrow.prototxt", *dir_ + "/narrow.caffemodel", config);
  const std::vector<RegionFeatures> got = det.Detect(input, {{bgr.rows, bgr.cols, img.scale}});
  const RegionFeatures want = Make(config).Extract(bgr);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].boxes, want.boxes);
  EXPECT_EQ(got[0].features, want.features);
  EXPECT_EQ(got[0].attr_ids, want.attr_ids);
}

}  // namespace
}  // namespace uniter::extractor
