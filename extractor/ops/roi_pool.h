// ROI max pooling with Caffe's ROIPoolingLayer semantics (the layer BUTD's
// roi_pool5 runs: 14x14 bins at spatial scale 1/16).
//
// Per ROI (batch, x1, y1, x2, y2) in input-image pixels: corners are scaled
// and rounded half away from zero (C round()), the region is inclusive of its
// end pixel (width = x2' - x1' + 1, at least 1), bin p covers
// [floor(p * size / pooled), ceil((p + 1) * size / pooled)) offset by the start
// and clipped to the map; an empty bin is 0. torchvision 0.14's roi_pool
// follows the same rules (its CPU kernel rounds the same way), so the two agree
// exactly; they differ from RoIAlign-style ops, which do not round.
//
// Thread safety: pure function. Tensors: float32 CPU features, or CUDA
// features (float32, fp16 or bf16, pooled in float; the result has their dtype
// and device) in a build with UNITER_HAVE_CUDA, where the kernel of cuda_ops.h
// runs on the current stream; `rois` may be on either device.
#pragma once

namespace at {
class Tensor;
}

namespace uniter::extractor::ops {

struct RoiPoolOptions {
  int pooled_height = 14;      // Default: 14 (BUTD roi_pool5).
  int pooled_width = 14;       // Default: 14.
  float spatial_scale = 0.0625f;  // Default: 1/16 (res4 stride).
};

// `features` [B,C,H,W], `rois` [K,5] (batch index, x1, y1, x2, y2).
// Returns [K,C,pooled_height,pooled_width].
at::Tensor RoiPool(const at::Tensor& features, const at::Tensor& rois, const RoiPoolOptions& options);

}  // namespace uniter::extractor::ops
