// CUDA ROI pooling with Caffe's rounding (see roi_pool.h): one thread per
// output cell, bins from internal/box_math.h as in the CPU op.
#include "extractor/ops/cuda_ops.h"
#include "extractor/ops/internal/box_math.h"
#include "extractor/ops/internal/cuda_util.h"

namespace uniter::extractor::ops::cuda {
namespace {

__global__ void RoiPoolKernel(const float* features, int64_t ch, int h, int w, const float* rois,
                              int64_t total, RoiPoolOptions o, float* out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= total) return;
  const int pw = idx % o.pooled_width;
  const int ph = (idx / o.pooled_width) % o.pooled_height;
  const int64_t c = (idx / o.pooled_width / o.pooled_height) % ch;
  const int64_t k = idx / o.pooled_width / o.pooled_height / ch;
  const float* roi = rois + 5 * k;
  const int64_t b = static_cast<int64_t>(roi[0]);
  const internal::RoiCells cells = internal::ScaleRoi(roi, o.spatial_scale, o.pooled_height, o.pooled_width);
  int h0, h1, w0, w1;
  internal::BinRange(ph, cells.bin_h, cells.start_h, h, &h0, &h1);
  internal::BinRange(pw, cells.bin_w, cells.start_w, w, &w0, &w1);
  const bool empty = h1 <= h0 || w1 <= w0;
  float best = empty ? 0.f : -3.402823466e+38f;
  const float* plane = features + (b * ch + c) * h * w;
  for (int y = h0; y < h1; ++y)
    for (int x = w0; x < w1; ++x) best = plane[y * w + x] > best ? plane[y * w + x] : best;
  out[idx] = best;
}

}  // namespace

void LaunchRoiPool(const float* d_features, int64_t b, int64_t ch, int64_t h, int64_t w, const float* d_rois,
                   int64_t k, const RoiPoolOptions& options, float* d_out, void* stream) {
  const int64_t total = k * ch * options.pooled_height * options.pooled_width;
  if (total == 0) return;
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>((total + kThreads - 1) / kThreads);
  RoiPoolKernel<<<blocks, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      d_features, ch, static_cast<int>(h), static_cast<int>(w), d_rois, total, options, d_out);
  Check(cudaGetLastError(), "RoiPoolKernel");
}

std::vector<float> RoiPoolHost(const float* features, int64_t b, int64_t ch, int64_t h, int64_t w,
                               const float* rois, int64_t k, const RoiPoolOptions& options) {
  DeviceBuffer<float> d_features(b * ch * h * w), d_rois(5 * k);
  DeviceBuffer<float> d_out(k * ch * options.pooled_height * options.pooled_width);
  d_features.Upload(features);
  d_rois.Upload(rois);
  LaunchRoiPool(d_features.get(), b, ch, h, w, d_rois.get(), k, options, d_out.get(), nullptr);
  std::vector<float> out(k * ch * options.pooled_height * options.pooled_width);
  d_out.Download(out.data());
  return out;
}

}  // namespace uniter::extractor::ops::cuda
