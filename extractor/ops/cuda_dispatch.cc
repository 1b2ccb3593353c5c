// CUDA tensors through the kernels of cuda_ops.h (see internal/cuda_dispatch.h).
// Compiled only when UNITER_HAVE_CUDA: it needs LibTorch's CUDA headers.
#include "extractor/ops/internal/cuda_dispatch.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "extractor/ops/cuda_ops.h"

namespace uniter::extractor::ops::internal {
namespace {

void* CurrentStream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Bit masks (uint64 words) live in int64 tensors: LibTorch's allocator and copies.
const uint64_t* Words(const at::Tensor& t) { return reinterpret_cast<const uint64_t*>(t.const_data_ptr<int64_t>()); }
uint64_t* MutableWords(at::Tensor& t) { return reinterpret_cast<uint64_t*>(t.mutable_data_ptr<int64_t>()); }

}  // namespace

at::Tensor NmsCuda(const at::Tensor& boxes_in, const at::Tensor& scores_in, const at::Tensor& idxs_in,
                   const NmsOptions& options) {
  const c10::cuda::CUDAGuard guard(boxes_in.device());
  const auto long_opts = boxes_in.options().dtype(at::kLong);
  const int64_t n = boxes_in.size(0);
  if (n == 0) return at::empty({0}, long_opts);
  const at::Tensor scores = scores_in.to(boxes_in.device(), at::kFloat).contiguous();
  // Stable: equal scores keep the lower index first, as the CPU op's order.
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const at::Tensor sorted = boxes_in.index_select(0, order).contiguous();
  at::Tensor sorted_idxs;
  if (idxs_in.defined()) sorted_idxs = idxs_in.to(boxes_in.device(), at::kLong).index_select(0, order).contiguous();
  const int64_t words = cuda::NmsMaskWords(n);
  at::Tensor mask = at::empty({n, words}, long_opts);
  cuda::LaunchBatchedNmsMask(sorted.const_data_ptr<float>(),
                             sorted_idxs.defined() ? sorted_idxs.const_data_ptr<int64_t>() : nullptr, n, options,
                             MutableWords(mask), CurrentStream());
  // The greedy pass is sequential: a few microseconds per kept box on the host.
  const at::Tensor host_mask = mask.cpu();
  const uint64_t* m = Words(host_mask);
  std::vector<uint64_t> removed(words, 0);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if ((removed[i / 64] >> (i % 64)) & 1) continue;
    keep.push_back(i);
    // The kernel writes only the tiles at or right of the diagonal.
    for (int64_t w = i / 64; w < words; ++w) removed[w] |= m[i * words + w];
  }
  const at::Tensor kept = torch::from_blob(keep.data(), {static_cast<int64_t>(keep.size())}, torch::kLong)
                              .to(boxes_in.device());
  return order.index_select(0, kept);
}

at::Tensor MultiClassNmsMaskCuda(const at::Tensor& boxes_in, const at::Tensor& scores_in,
                                 const NmsOptions& options) {
  const int64_t n = boxes_in.size(0);
  if (n > cuda::kMaxMultiClassBoxes)  // beyond the kernel's shared memory: the CPU op
    return MultiClassNmsMask(boxes_in.cpu(), scores_in.cpu(), options).to(boxes_in.device());
  const c10::cuda::CUDAGuard guard(boxes_in.device());
  const at::Tensor boxes = boxes_in.contiguous();
  const at::Tensor scores = scores_in.to(boxes_in.device(), at::kFloat).contiguous();
  const int64_t c = scores.size(1);
  at::Tensor keep = at::empty({n, c}, boxes.options().dtype(at::kBool));
  if (n == 0 || c == 0) return keep;
  // From LibTorch's caching allocator, so no free waits for the kernels.
  at::Tensor workspace = at::empty({cuda::MultiClassNmsWorkspaceWords(n)}, boxes.options().dtype(at::kLong));
  static_assert(sizeof(bool) == sizeof(uint8_t));
  cuda::LaunchMultiClassNms(boxes.const_data_ptr<float>(), scores.const_data_ptr<float>(), n, c, options,
                            MutableWords(workspace), reinterpret_cast<uint8_t*>(keep.mutable_data_ptr<bool>()),
                            CurrentStream());
  return keep;
}

at::Tensor RoiPoolCuda(const at::Tensor& features_in, const at::Tensor& rois_in, const RoiPoolOptions& options) {
  const c10::cuda::CUDAGuard guard(features_in.device());
  const int64_t batch = features_in.size(0), k = rois_in.size(0);
  // Batch indices are checked where the ROIs are: on the host before the
  // upload, or with one small copy back when they are already on the GPU.
  if (k > 0) {
    const auto [lowest, highest] = at::aminmax(rois_in.select(1, 0).to(at::kFloat));
    const at::Tensor range = at::stack({lowest, highest}).cpu();
    const auto lo = static_cast<int64_t>(range[0].item<float>()), hi = static_cast<int64_t>(range[1].item<float>());
    if (lo < 0 || hi >= batch)
      throw Error("RoiPool: batch index " + std::to_string(lo < 0 ? lo : hi) + " outside [0," +
                  std::to_string(batch) + ")");
  }
  // fp16/bf16 maps (autocast) pool in float: the max of upcast values is the
  // upcast max, so casting back is exact.
  const at::Tensor features = features_in.to(at::kFloat).contiguous();
  const at::Tensor rois = rois_in.to(features_in.device(), at::kFloat).contiguous();
  at::Tensor out = at::empty({k, features.size(1), options.pooled_height, options.pooled_width}, features.options());
  cuda::LaunchRoiPool(features.const_data_ptr<float>(), batch, features.size(1), features.size(2), features.size(3),
                      rois.const_data_ptr<float>(), k, options, out.mutable_data_ptr<float>(), CurrentStream());
  return out.to(features_in.scalar_type());
}

}  // namespace uniter::extractor::ops::internal
