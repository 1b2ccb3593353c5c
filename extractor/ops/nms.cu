// CUDA NMS: the classic 64-box tile bit-mask kernel for one sorted list, and a
// multi-class kernel (one block per class) over shared boxes for BUTD's box
// selection, both using internal/box_math.h so IoU matches the CPU op bit for bit.
#include <algorithm>
#include <numeric>

#include "extractor/ops/cuda_ops.h"
#include "extractor/ops/internal/cuda_util.h"
#include "extractor/ops/internal/box_math.h"

namespace uniter::extractor::ops::cuda {
namespace {

constexpr int kTile = 64;

__device__ __forceinline__ int64_t Words(int64_t n) { return (n + 63) / 64; }

struct NmsParams {
  float offset;
  bool suppress_equal;
  double threshold;
};

NmsParams Params(const NmsOptions& o) {
  const bool caffe = o.convention == BoxConvention::kCaffe;
  return {caffe ? 1.f : 0.f, caffe, o.iou_threshold};
}

// `idxs` (nullable): boxes of different classes never suppress each other.
__global__ void NmsMaskKernel(const float* boxes, const int64_t* idxs, int64_t n, NmsParams p, uint64_t* mask) {
  const int64_t row_tile = blockIdx.y, col_tile = blockIdx.x;
  if (row_tile > col_tile) return;
  const int64_t rows_left = n - row_tile * kTile, cols_left = n - col_tile * kTile;
  const int rows = static_cast<int>(rows_left < kTile ? rows_left : kTile);
  const int cols = static_cast<int>(cols_left < kTile ? cols_left : kTile);
  __shared__ float tile[kTile * 4];
  __shared__ int64_t tile_idx[kTile];
  if (threadIdx.x < cols) {
    for (int k = 0; k < 4; ++k) tile[threadIdx.x * 4 + k] = boxes[(col_tile * kTile + threadIdx.x) * 4 + k];
    tile_idx[threadIdx.x] = idxs ? idxs[col_tile * kTile + threadIdx.x] : 0;
  }
  __syncthreads();
  if (threadIdx.x >= rows) return;
  const int64_t i = row_tile * kTile + threadIdx.x;
  const float* a = boxes + i * 4;
  const float area_a = internal::BoxArea(a, p.offset);
  const int64_t idx_a = idxs ? idxs[i] : 0;
  uint64_t bits = 0;
  for (int j = (row_tile == col_tile ? threadIdx.x + 1 : 0); j < cols; ++j) {
    const float* b = tile + j * 4;
    if (tile_idx[j] == idx_a && internal::Suppresses(a, area_a, b, internal::BoxArea(b, p.offset), p.offset,
                                                     p.suppress_equal, p.threshold))
      bits |= uint64_t{1} << j;
  }
  mask[i * Words(n) + col_tile] = bits;
}

// Bit j of row i: box i suppresses box j (symmetric, every pair).
__global__ void OverlapKernel(const float* boxes, int64_t n, NmsParams p, uint64_t* overlaps) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.y) + threadIdx.y;
  const int64_t word = threadIdx.x + blockIdx.y * static_cast<int64_t>(blockDim.x);
  const int64_t words = Words(n);
  if (i >= n || word >= words) return;
  const float* a = boxes + i * 4;
  const float area_a = internal::BoxArea(a, p.offset);
  uint64_t bits = 0;
  for (int k = 0; k < 64; ++k) {
    const int64_t j = word * 64 + k;
    if (j >= n) break;
    const float* b = boxes + j * 4;
    if (j != i && internal::Suppresses(a, area_a, b, internal::BoxArea(b, p.offset), p.offset,
                                       p.suppress_equal, p.threshold))
      bits |= uint64_t{1} << k;
  }
  overlaps[i * words + word] = bits;
}

// One block per class: rank boxes by score (ties: lower index first), then
// greedy suppression with a shared removed-bitset.
__global__ void MultiClassKernel(const uint64_t* overlaps, const float* scores, int64_t n, int64_t c,
                                 uint8_t* keep) {
  extern __shared__ unsigned char smem[];
  const int64_t words = Words(n);
  uint64_t* removed = reinterpret_cast<uint64_t*>(smem);
  float* s = reinterpret_cast<float*>(removed + words);
  int* order = reinterpret_cast<int*>(s + n);
  const int64_t cls = blockIdx.x;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s[i] = scores[i * c + cls];
  for (int64_t w = threadIdx.x; w < words; w += blockDim.x) removed[w] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    int rank = 0;
    const float si = s[i];
    for (int64_t j = 0; j < n; ++j) rank += (s[j] > si) || (s[j] == si && j < i);
    order[rank] = static_cast<int>(i);
  }
  __syncthreads();
  // The greedy pass is sequential; a warp ORs each kept row in parallel.
  if (threadIdx.x < 32) {
    for (int64_t r = 0; r < n; ++r) {
      const int i = order[r];
      const bool gone = (removed[i / 64] >> (i % 64)) & 1;
      __syncwarp();
      if (gone) continue;
      if (threadIdx.x == 0) keep[i * c + cls] = 1;
      for (int64_t w = threadIdx.x; w < words; w += 32) removed[w] |= overlaps[i * words + w];
      __syncwarp();
    }
  }
}

cudaStream_t AsStream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace

int DeviceCount(std::string* reason) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    if (reason) *reason = std::string("CUDA runtime: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky error for later calls
    return 0;
  }
  if (count == 0 && reason) *reason = "no CUDA device";
  return count;
}

void LaunchNmsMask(const float* d_boxes, int64_t n, const NmsOptions& options, uint64_t* d_mask,
                   void* stream) {
  LaunchBatchedNmsMask(d_boxes, nullptr, n, options, d_mask, stream);
}

void LaunchBatchedNmsMask(const float* d_boxes, const int64_t* d_idxs, int64_t n, const NmsOptions& options,
                          uint64_t* d_mask, void* stream) {
  if (n == 0) return;
  const int64_t tiles = NmsMaskWords(n);
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(tiles));
  NmsMaskKernel<<<grid, kTile, 0, AsStream(stream)>>>(d_boxes, d_idxs, n, Params(options), d_mask);
  Check(cudaGetLastError(), "NmsMaskKernel");
}

void LaunchMultiClassNms(const float* d_boxes, const float* d_scores, int64_t n, int64_t c,
                         const NmsOptions& options, uint64_t* d_workspace, uint8_t* d_keep, void* stream) {
  if (n == 0 || c == 0) return;
  if (n > kMaxMultiClassBoxes)
    throw Error("LaunchMultiClassNms: at most " + std::to_string(kMaxMultiClassBoxes) + " boxes, got " +
                std::to_string(n));
  const int64_t words = NmsMaskWords(n);
  uint64_t* overlaps = d_workspace;
  const dim3 block(static_cast<unsigned>(std::min<int64_t>(words, 8)), 32);
  const dim3 grid(static_cast<unsigned>((n + 31) / 32), static_cast<unsigned>((words + block.x - 1) / block.x));
  OverlapKernel<<<grid, block, 0, AsStream(stream)>>>(d_boxes, n, Params(options), overlaps);
  Check(cudaGetLastError(), "OverlapKernel");
  Check(cudaMemsetAsync(d_keep, 0, n * c, AsStream(stream)), "cudaMemsetAsync");
  const size_t smem = words * sizeof(uint64_t) + n * sizeof(float) + n * sizeof(int);
  MultiClassKernel<<<static_cast<unsigned>(c), 256, smem, AsStream(stream)>>>(overlaps, d_scores, n, c, d_keep);
  Check(cudaGetLastError(), "MultiClassKernel");
}

std::vector<int64_t> NmsHost(const float* boxes, const float* scores, int64_t n, const NmsOptions& options) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  std::vector<float> sorted(4 * n);
  for (int64_t i = 0; i < n; ++i) std::copy(boxes + 4 * order[i], boxes + 4 * order[i] + 4, sorted.begin() + 4 * i);
  const int64_t words = NmsMaskWords(n);
  DeviceBuffer<float> d_boxes(4 * n);
  DeviceBuffer<uint64_t> d_mask(n * words);
  d_boxes.Upload(sorted.data());
  LaunchNmsMask(d_boxes.get(), n, options, d_mask.get(), nullptr);
  std::vector<uint64_t> mask(n * words);
  d_mask.Download(mask.data());
  // Only the upper triangle was written; the greedy pass reads only that part.
  std::vector<uint64_t> removed(words, 0);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if ((removed[i / 64] >> (i % 64)) & 1) continue;
    keep.push_back(order[i]);
    for (int64_t wd = i / 64; wd < words; ++wd) removed[wd] |= mask[i * words + wd];
  }
  return keep;
}

std::vector<uint8_t> MultiClassNmsHost(const float* boxes, const float* scores, int64_t n, int64_t c,
                                       const NmsOptions& options) {
  DeviceBuffer<float> d_boxes(4 * n), d_scores(n * c);
  DeviceBuffer<uint8_t> d_keep(n * c);
  DeviceBuffer<uint64_t> d_workspace(MultiClassNmsWorkspaceWords(n));
  d_boxes.Upload(boxes);
  d_scores.Upload(scores);
  LaunchMultiClassNms(d_boxes.get(), d_scores.get(), n, c, options, d_workspace.get(), d_keep.get(), nullptr);
  std::vector<uint8_t> keep(n * c);
  d_keep.Download(keep.data());
  return keep;
}

}  // namespace uniter::extractor::ops::cuda
