// Box arithmetic shared by the CPU and CUDA ops, so both compute IoU and ROI
// bins with the same float operations in the same order (the CUDA files are
// compiled with -fmad=false so no multiply-add is fused either).
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define UNITER_HD __host__ __device__ __forceinline__
#else
#define UNITER_HD inline
#endif

namespace uniter::extractor::ops::internal {

// Offset added to widths/heights: 1 for Caffe's inclusive pixel boxes, else 0.
UNITER_HD float BoxArea(const float* b, float offset) {
  return (b[2] - b[0] + offset) * (b[3] - b[1] + offset);
}

// True when box `b` (area `area_b`) overlaps box `a` (area `area_a`) enough to
// be suppressed. Mirrors cpu_nms.pyx / torchvision's nms_kernel.cpp: the
// threshold is a double there, so the float IoU is compared in double.
UNITER_HD bool Suppresses(const float* a, float area_a, const float* b, float area_b, float offset,
                          bool suppress_equal, double threshold) {
  const float xx1 = a[0] > b[0] ? a[0] : b[0];
  const float yy1 = a[1] > b[1] ? a[1] : b[1];
  const float xx2 = a[2] < b[2] ? a[2] : b[2];
  const float yy2 = a[3] < b[3] ? a[3] : b[3];
  float w = xx2 - xx1 + offset;
  float h = yy2 - yy1 + offset;
  w = w > 0.f ? w : 0.f;
  h = h > 0.f ? h : 0.f;
  const float inter = w * h;
  const float iou = inter / (area_a + area_b - inter);
  const double d = static_cast<double>(iou);
  return suppress_equal ? d >= threshold : d > threshold;
}

// One ROI in feature-map cells, rounded as Caffe's ROIPoolingLayer does.
struct RoiCells {
  int start_w, start_h;
  float bin_w, bin_h;
};

UNITER_HD RoiCells ScaleRoi(const float* roi, float spatial_scale, int pooled_h, int pooled_w) {
  RoiCells r;
  r.start_w = static_cast<int>(::roundf(roi[1] * spatial_scale));
  r.start_h = static_cast<int>(::roundf(roi[2] * spatial_scale));
  const int end_w = static_cast<int>(::roundf(roi[3] * spatial_scale));
  const int end_h = static_cast<int>(::roundf(roi[4] * spatial_scale));
  int roi_w = end_w - r.start_w + 1;
  int roi_h = end_h - r.start_h + 1;
  roi_w = roi_w > 1 ? roi_w : 1;
  roi_h = roi_h > 1 ? roi_h : 1;
  r.bin_w = static_cast<float>(roi_w) / static_cast<float>(pooled_w);
  r.bin_h = static_cast<float>(roi_h) / static_cast<float>(pooled_h);
  return r;
}

UNITER_HD int ClampInt(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// [begin, end) of bin `p` along one axis, clipped to [0, size].
UNITER_HD void BinRange(int p, float bin, int start, int size, int* begin, int* end) {
  *begin = ClampInt(static_cast<int>(::floorf(static_cast<float>(p) * bin)) + start, 0, size);
  *end = ClampInt(static_cast<int>(::ceilf(static_cast<float>(p + 1) * bin)) + start, 0, size);
}

}  // namespace uniter::extractor::ops::internal
