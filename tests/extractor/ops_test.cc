// NMS and ROI pooling against torchvision 0.14's ops (the reference), on random
// inputs: exact kept indices, pooled values equal.
#include <torch/torch.h>

#include "common/error.h"
#include "extractor/ops/nms.h"
#include "extractor/ops/roi_pool.h"
#include "tests/extractor/torchvision_ref.h"
#include "tests/test_util.h"

namespace uniter::extractor::ops {
namespace {

using ::uniter::testing::TempDir;
using testing::RandomRois;
using testing::WriteRaw;

at::Tensor Reference(const std::string& dir, const std::string& meta, at::ScalarType dtype) {
  return testing::TorchvisionReference(dir, meta, dtype);
}

// Random boxes in a 600x1000 image, many overlapping.
at::Tensor RandomBoxes(int64_t n) {
  at::Tensor xy = torch::rand({n, 2}) * torch::tensor({900.f, 500.f});
  at::Tensor wh = torch::rand({n, 2}) * 150.f + 1.f;
  return torch::cat({xy, xy + wh}, 1);
}

// Distinct scores: ties have no defined order in the references.
at::Tensor UniqueScores(int64_t n) { return torch::randperm(n).to(torch::kFloat) / static_cast<float>(n); }

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UNITER_REQUIRE_PYTHON_MODULE("torchvision");
    torch::manual_seed(7);
  }
};

TEST_F(OpsTest, NmsMatchesTorchvision) {
  for (double thr : {0.3, 0.5, 0.7}) {
    const std::string dir = TempDir("nms");
    const int64_t n = 2000;
    at::Tensor boxes = RandomBoxes(n), scores = UniqueScores(n);
    WriteRaw(dir + "/boxes.bin", boxes);
    WriteRaw(dir + "/scores.bin", scores);
    const at::Tensor want = Reference(
        dir, R"({"op":"nms","n":2000,"threshold":)" + std::to_string(thr) + "}", torch::kLong);
    const at::Tensor got = Nms(boxes, scores, {thr, BoxConvention::kTorchvision});
    ASSERT_GT(got.size(0), 10);
    ASSERT_LT(got.size(0), n);
    EXPECT_TRUE(torch::equal(got, want)) << "threshold " << thr;
  }
}

// Caffe's +1 areas equal torchvision's IoU on boxes grown by one pixel; BUTD
// suppresses at IoU >= threshold, torchvision at >, which random floats never tell apart.
TEST_F(OpsTest, CaffeNmsMatchesTorchvisionOnInclusiveBoxes) {
  const std::string dir = TempDir("nms_caffe");
  const int64_t n = 3000;
  at::Tensor boxes = torch::round(RandomBoxes(n)), scores = UniqueScores(n);
  WriteRaw(dir + "/boxes.bin", boxes);
  WriteRaw(dir + "/scores.bin", scores);
  const at::Tensor want =
      Reference(dir, R"({"op":"nms","n":3000,"threshold":0.7,"plus_one":true})", torch::kLong);
  const at::Tensor caffe = Nms(boxes, scores, {0.7, BoxConvention::kCaffe});
  EXPECT_TRUE(torch::equal(caffe, want));
  // And the +1 matters: the plain convention keeps a different set.
  EXPECT_FALSE(torch::equal(Nms(boxes, scores, {0.7, BoxConvention::kTorchvision}), want));
}

TEST_F(OpsTest, BatchedNmsMatchesTorchvision) {
  const std::string dir = TempDir("batched");
  const int64_t n = 3000;
  at::Tensor boxes = RandomBoxes(n), scores = UniqueScores(n);
  at::Tensor idxs = torch::randint(0, 40, {n}, torch::kLong);
  WriteRaw(dir + "/boxes.bin", boxes);
  WriteRaw(dir + "/scores.bin", scores);
  WriteRaw(dir + "/idxs.bin", idxs);
  const at::Tensor want = Reference(dir, R"({"op":"batched_nms","n":3000,"threshold":0.5})", torch::kLong);
  EXPECT_TRUE(torch::equal(BatchedNms(boxes, scores, idxs, {0.5, BoxConvention::kTorchvision}), want));
}

// BUTD's selection shape: 300 ROIs x 1600 classes, per-class NMS 0.3.
TEST_F(OpsTest, MultiClassNmsMatchesTorchvisionBatchedNms) {
  const std::string dir = TempDir("multiclass");
  const int64_t n = 300, c = 1600;
  at::Tensor boxes = torch::round(RandomBoxes(n)), scores = torch::softmax(torch::randn({n, c}) * 3, 1);
  WriteRaw(dir + "/boxes.bin", boxes);
  WriteRaw(dir + "/scores.bin", scores);
  for (bool caffe : {false, true}) {
    const at::Tensor want =
        Reference(dir, std::string(R"({"op":"multiclass","n":300,"c":1600,"threshold":0.3,"plus_one":)") +
                           (caffe ? "true" : "false") + "}",
                  torch::kByte);
    const at::Tensor got =
        MultiClassNmsMask(boxes, scores, {0.3, caffe ? BoxConvention::kCaffe : BoxConvention::kTorchvision});
    ASSERT_EQ(want.numel(), n * c);
    EXPECT_TRUE(torch::equal(got.reshape(-1).to(torch::kByte), want)) << "caffe " << caffe;
    EXPECT_LT(got.sum().item<int64_t>(), n * c);
  }
}

TEST_F(OpsTest, NmsOfNothingIsEmpty) {
  EXPECT_EQ(Nms(torch::zeros({0, 4}), torch::zeros({0}), {}).numel(), 0);
  EXPECT_EQ(MultiClassNmsMask(torch::zeros({0, 4}), torch::zeros({0, 5}), {}).numel(), 0);
  EXPECT_THROW(Nms(torch::zeros({3, 5}), torch::zeros({3}), {}), Error);
}

// ROIs on the 1/16 grid, with corners on exact half cells (x*scale = k + 0.5)
// to exercise rounding, plus ROIs partly and wholly outside the map; column 0
// picks one of several images of the batch.
TEST_F(OpsTest, RoiPoolMatchesTorchvision) {
  for (int64_t b : {1, 2, 5}) {
    const std::string dir = TempDir("roi_pool");
    const int64_t ch = 24, h = 38, w = 50, k = 400;
    at::Tensor features = torch::randn({b, ch, h, w});
    at::Tensor rois = RandomRois(b, h, w, k);
    WriteRaw(dir + "/features.bin", features);
    WriteRaw(dir + "/rois.bin", rois);
    const at::Tensor want = Reference(dir,
                                      R"({"op":"roi_pool","b":)" + std::to_string(b) +
                                          R"(,"ch":24,"h":38,"w":50,"k":400,"ph":14,"pw":14,"scale":0.0625})",
                                      torch::kFloat);
    const at::Tensor got = RoiPool(features, rois, {});
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{k, ch, 14, 14}));
    EXPECT_TRUE(torch::equal(got.reshape(-1), want)) << b << " images";
    EXPECT_GT((got == 0).sum().item<int64_t>(), 0);  // the outside ROIs pooled empty bins
  }
}

// The batch index selects the image: pooling image i alone (index 0) gives
// the same rows, and an index outside the batch is an error.
TEST_F(OpsTest, RoiPoolHonoursBatchIndex) {
  const int64_t b = 3, ch = 8, h = 20, w = 30, k = 90;
  const at::Tensor features = torch::randn({b, ch, h, w});
  const at::Tensor rois = RandomRois(b, h, w, k);
  const at::Tensor batched = RoiPool(features, rois, {7, 7, 0.0625f});
  for (int64_t i = 0; i < b; ++i) {
    const at::Tensor rows = (rois.select(1, 0) == i).nonzero().reshape(-1);
    ASSERT_GT(rows.numel(), 0);
    at::Tensor own = rois.index_select(0, rows).clone();
    own.select(1, 0).zero_();
    const at::Tensor alone = RoiPool(features.slice(0, i, i + 1), own, {7, 7, 0.0625f});
    EXPECT_TRUE(torch::equal(batched.index_select(0, rows), alone)) << "image " << i;
  }
  at::Tensor bad = rois.clone();
  bad[5][0] = 3;
  EXPECT_THROW(RoiPool(features, bad, {}), Error);
}

}  // namespace
}  // namespace uniter::extractor::ops
