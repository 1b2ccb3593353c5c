// The CUDA kernels (extractor/ops/*.cu) and the CUDA-tensor dispatch of the
// ops against the CPU ops, which ops_test.cc checks against torchvision, and
// the CUDA ROI pooling of a multi-image batch against torchvision directly.
// Skips, with the reason, when no CUDA device is present.
#include <torch/torch.h>

#include "common/error.h"
#include "extractor/ops/cuda_ops.h"
#include "extractor/ops/nms.h"
#include "extractor/ops/roi_pool.h"
#include "tests/extractor/torchvision_ref.h"
#include "tests/test_util.h"

#ifdef UNITER_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace uniter::extractor::ops {
namespace {

using testing::RandomRois;

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    if (cuda::DeviceCount(&reason) == 0) GTEST_SKIP() << "no CUDA device (" << reason << ")";
    torch::manual_seed(11);
  }
};

// The tensor-level ops route CUDA tensors to the kernels only in a build with
// UNITER_HAVE_CUDA (a CUDA LibTorch); the raw kernels build with nvcc alone.
class CudaDispatchTest : public CudaOpsTest {
 protected:
  void SetUp() override {
#ifndef UNITER_HAVE_CUDA
    GTEST_SKIP() << "built without UNITER_HAVE_CUDA (a CPU LibTorch): no CUDA tensor dispatch to test";
#endif
    CudaOpsTest::SetUp();
    if (IsSkipped()) return;
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible to LibTorch";
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

TEST_F(CudaDispatchTest, NmsOnCudaTensorsEqualsCpu) {
  for (auto conv : {BoxConvention::kCaffe, BoxConvention::kTorchvision})
    for (int64_t n : {0, 1, 65, 6000}) {
      const at::Tensor boxes = RandomBoxes(n), scores = torch::rand({n});
      const at::Tensor got = Nms(boxes.cuda(), scores.cuda(), {0.7, conv});
      EXPECT_TRUE(got.is_cuda());
      EXPECT_TRUE(torch::equal(got.cpu(), Nms(boxes, scores, {0.7, conv}))) << n;
    }
}

TEST_F(CudaDispatchTest, BatchedNmsOnCudaTensorsEqualsCpu) {
  const int64_t n = 3000;
  const at::Tensor boxes = RandomBoxes(n), scores = torch::rand({n});
  const at::Tensor idxs = torch::randint(0, 40, {n}, torch::kLong);
  const at::Tensor cpu = BatchedNms(boxes, scores, idxs, {0.5, BoxConvention::kTorchvision});
  const at::Tensor gpu = BatchedNms(boxes.cuda(), scores.cuda(), idxs.cuda(), {0.5, BoxConvention::kTorchvision});
  ASSERT_GT(cpu.numel(), 40);
  EXPECT_TRUE(torch::equal(gpu.cpu(), cpu));
}

// BUTD's selection: 300 ROIs x 1600 classes; and above the kernel's limit
// (the CPU fallback) the same answer.
TEST_F(CudaDispatchTest, MultiClassNmsMaskOnCudaTensorsEqualsCpu) {
  for (int64_t n : {int64_t{300}, cuda::kMaxMultiClassBoxes + 1}) {
    const int64_t c = n > 1000 ? 8 : 1600;
    const at::Tensor boxes = RandomBoxes(n), scores = torch::softmax(torch::randn({n, c}) * 3, 1);
    const at::Tensor gpu = MultiClassNmsMask(boxes.cuda(), scores.cuda(), {0.3, BoxConvention::kCaffe});
    EXPECT_TRUE(gpu.is_cuda());
    EXPECT_TRUE(torch::equal(gpu.cpu(), MultiClassNmsMask(boxes, scores, {0.3, BoxConvention::kCaffe}))) << n;
  }
}

// Several images per batch, fp32 and fp16 maps, ROIs on either device; the
// fp32 result also against torchvision (its CPU op, the reference of ops_test).
TEST_F(CudaDispatchTest, RoiPoolOnCudaTensorsEqualsCpuAndTorchvision) {
  const int64_t b = 4, ch = 32, h = 38, w = 50, k = 400;
  const at::Tensor features = torch::randn({b, ch, h, w});
  const at::Tensor rois = RandomRois(b, h, w, k);
  const at::Tensor cpu = RoiPool(features, rois, {});
  const at::Tensor gpu = RoiPool(features.cuda(), rois.cuda(), {});
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_TRUE(torch::equal(gpu.cpu(), cpu));
  EXPECT_TRUE(torch::equal(RoiPool(features.cuda(), rois, {}).cpu(), cpu));  // host ROIs
  const at::Tensor half = RoiPool(features.cuda().to(torch::kHalf), rois.cuda(), {});
  EXPECT_EQ(half.scalar_type(), torch::kHalf);
  const at::Tensor half_cpu = RoiPool(features.to(torch::kHalf).to(torch::kFloat), rois, {}).to(torch::kHalf);
  EXPECT_TRUE(torch::equal(half.cpu(), half_cpu));
  at::Tensor bad = rois.clone();
  bad[7][0] = b;
  EXPECT_THROW(RoiPool(features.cuda(), bad.cuda(), {}), Error);

  UNITER_REQUIRE_REFERENCE(::uniter::testing::PythonHas("torchvision"))
      << "CUDA equals CPU; reference Python module 'torchvision' missing from " << ::uniter::testing::Python();
  const std::string dir = ::uniter::testing::TempDir("cuda_roi_pool");
  testing::WriteRaw(dir + "/features.bin", features);
  testing::WriteRaw(dir + "/rois.bin", rois);
  const at::Tensor want = testing::TorchvisionReference(
      dir, R"({"op":"roi_pool","b":4,"ch":32,"h":38,"w":50,"k":400,"ph":14,"pw":14,"scale":0.0625})", torch::kFloat);
  EXPECT_TRUE(torch::equal(gpu.cpu().reshape(-1), want));
}

#ifdef UNITER_HAVE_CUDA
// Kernels on LibTorch's current stream: work queued on a side stream is
// ordered with the op's own kernels.
TEST_F(CudaDispatchTest, RunsOnTheCurrentStream) {
  const at::Tensor features = torch::randn({2, 16, 30, 40}), rois = RandomRois(2, 30, 40, 200);
  const at::Tensor want = RoiPool(features, rois, {});
  at::Tensor out;
  {
    const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool());
    const at::Tensor f = features.cuda(), r = rois.cuda();
    out = RoiPool(f, r, {});
    c10::cuda::getCurrentCUDAStream().synchronize();
  }
  EXPECT_TRUE(torch::equal(out.cpu(), want));
}
#endif

}  // namespace
}  // namespace uniter::extractor::ops
