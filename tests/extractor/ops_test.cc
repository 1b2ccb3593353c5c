// NMS and ROI pooling against torchvision 0.14's ops (the reference), on random
// inputs: exact kept indices, pooled values equal.
#include <torch/torch.h>

#include <fstream>

#include "common/error.h"
#include "extractor/ops/nms.h"
#include "extractor/ops/roi_pool.h"
#include "tests/test_util.h"

namespace uniter::extractor::ops {
namespace {

using ::uniter::testing::Python;
using ::uniter::testing::Quote;
using ::uniter::testing::Run;
using ::uniter::testing::TempDir;

void WriteRaw(const std::string& path, const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
}

// Runs torchvision_ref.py on `dir` and returns out.bin as `dtype`.
at::Tensor Reference(const std::string& dir, const std::string& meta, at::ScalarType dtype) {
  ::uniter::testing::WriteFile(dir + "/meta.json", meta);
  const std::string script = std::string(UNITER_EXTRACTOR_TEST_DIR) + "/torchvision_ref.py";
  const auto r = Run(Quote(Python()) + " " + Quote(script) + " " + Quote(dir) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  const std::string bytes = ::uniter::testing::ReadFile(dir + "/out.bin");
  const int64_t n = static_cast<int64_t>(bytes.size()) / static_cast<int64_t>(c10::elementSize(dtype));
  return torch::from_blob(const_cast<char*>(bytes.data()), {n}, dtype).clone();
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
// to exercise rounding, plus ROIs partly and wholly outside the map.
TEST_F(OpsTest, RoiPoolMatchesTorchvision) {
  const std::string dir = TempDir("roi_pool");
  const int64_t b = 2, ch = 24, h = 38, w = 50, k = 400;
  at::Tensor features = torch::randn({b, ch, h, w});
  at::Tensor corners = torch::rand({k, 4}) * torch::tensor({w * 16.f, h * 16.f, w * 16.f, h * 16.f});
  corners.slice(0, 0, 100) = torch::floor(corners.slice(0, 0, 100) / 16) * 16 + 8;  // half cells
  corners.slice(0, 100, 120) = corners.slice(0, 100, 120) + 700;                     // beyond the map
  at::Tensor x = torch::stack({torch::min(corners.select(1, 0), corners.select(1, 2)),
                               torch::min(corners.select(1, 1), corners.select(1, 3)),
                               torch::max(corners.select(1, 0), corners.select(1, 2)),
                               torch::max(corners.select(1, 1), corners.select(1, 3))},
                              1);
  at::Tensor rois = torch::cat({torch::randint(0, b, {k, 1}).to(torch::kFloat), x}, 1);
  WriteRaw(dir + "/features.bin", features);
  WriteRaw(dir + "/rois.bin", rois);
  const at::Tensor want =
      Reference(dir, R"({"op":"roi_pool","b":2,"ch":24,"h":38,"w":50,"k":400,"ph":14,"pw":14,"scale":0.0625})",
                torch::kFloat);
  const at::Tensor got = RoiPool(features, rois, {});
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{k, ch, 14, 14}));
  EXPECT_TRUE(torch::equal(got.reshape(-1), want));
  EXPECT_GT((got == 0).sum().item<int64_t>(), 0);  // the outside ROIs pooled empty bins
}

}  // namespace
}  // namespace uniter::extractor::ops
