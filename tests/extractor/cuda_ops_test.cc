// The CUDA kernels (extractor/ops/*.cu) against the CPU ops, which
// ops_test.cc checks against torchvision. Skips when no GPU is present.
#include <torch/torch.h>

#include "extractor/ops/cuda_ops.h"
#include "extractor/ops/nms.h"
#include "extractor/ops/roi_pool.h"
#include "tests/test_util.h"

namespace uniter::extractor::ops {
namespace {

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    if (cuda::DeviceCount(&reason) == 0) GTEST_SKIP() << "no GPU: " << reason;
    torch::manual_seed(11);
  }
};

at::Tensor RandomBoxes(int64_t n) {
  at::Tensor xy = torch::rand({n, 2}) * torch::tensor({900.f, 500.f});
  at::Tensor wh = torch::rand({n, 2}) * 150.f + 1.f;
  return torch::round(torch::cat({xy, xy + wh}, 1));
}

TEST_F(CudaOpsTest, NmsEqualsCpu) {
  for (auto conv : {BoxConvention::kCaffe, BoxConvention::kTorchvision})
    for (int64_t n : {1, 63, 64, 65, 6000}) {
      at::Tensor boxes = RandomBoxes(n), scores = torch::rand({n});
      const at::Tensor cpu = Nms(boxes, scores, {0.7, conv});
      const auto gpu = cuda::NmsHost(boxes.data_ptr<float>(), scores.data_ptr<float>(), n, {0.7, conv});
      ASSERT_EQ(static_cast<int64_t>(gpu.size()), cpu.numel()) << n;
      EXPECT_TRUE(std::equal(gpu.begin(), gpu.end(), cpu.data_ptr<int64_t>())) << n;
    }
}

TEST_F(CudaOpsTest, MultiClassNmsEqualsCpu) {
  const int64_t n = 300, c = 1600;
  at::Tensor boxes = RandomBoxes(n), scores = torch::softmax(torch::randn({n, c}) * 3, 1).contiguous();
  const at::Tensor cpu = MultiClassNmsMask(boxes, scores, {0.3, BoxConvention::kCaffe}).to(torch::kByte);
  const auto gpu = cuda::MultiClassNmsHost(boxes.data_ptr<float>(), scores.data_ptr<float>(), n, c,
                                           {0.3, BoxConvention::kCaffe});
  ASSERT_EQ(static_cast<int64_t>(gpu.size()), n * c);
  EXPECT_TRUE(std::equal(gpu.begin(), gpu.end(), cpu.data_ptr<uint8_t>()));
}

TEST_F(CudaOpsTest, RoiPoolEqualsCpu) {
  const int64_t b = 2, ch = 64, h = 38, w = 50, k = 300;
  at::Tensor features = torch::randn({b, ch, h, w});
  at::Tensor xy = torch::rand({k, 2}) * 700, wh = torch::rand({k, 2}) * 300;
  at::Tensor rois = torch::cat({torch::randint(0, b, {k, 1}).to(torch::kFloat), xy, xy + wh}, 1).contiguous();
  const at::Tensor cpu = RoiPool(features, rois, {});
  const auto gpu = cuda::RoiPoolHost(features.data_ptr<float>(), b, ch, h, w, rois.data_ptr<float>(), k, {});
  ASSERT_EQ(static_cast<int64_t>(gpu.size()), cpu.numel());
  EXPECT_TRUE(std::equal(gpu.begin(), gpu.end(), cpu.data_ptr<float>()));
}

}  // namespace
}  // namespace uniter::extractor::ops
