// CUDA versions of the ops in nms.h and roi_pool.h, written against raw device
// pointers and the CUDA runtime only, so they build with nvcc without a CUDA
// LibTorch. The CPU ops are their reference (tests/extractor/cuda_ops_test.cc).
//
// Launch* functions take device pointers and enqueue on `stream` (a
// cudaStream_t; nullptr = default stream); they do not synchronize. The *Host
// helpers copy host arrays in and out and synchronize; tests and tools use them.
// Errors throw uniter::Error with the CUDA error string.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "extractor/ops/nms.h"
#include "extractor/ops/roi_pool.h"

namespace uniter::extractor::ops::cuda {

// Number of usable CUDA devices; 0 with `*reason` set when none (no driver,
// no device, or the runtime refuses).
int DeviceCount(std::string* reason);

// Words of the NMS bit mask per box: ceil(n / 64).
inline int64_t NmsMaskWords(int64_t n) { return (n + 63) / 64; }

// `d_boxes` [n,4] already sorted by decreasing score. Writes `d_mask`
// [n, NmsMaskWords(n)]: bit j of row i set when box i suppresses box j (j > i).
void LaunchNmsMask(const float* d_boxes, int64_t n, const NmsOptions& options, uint64_t* d_mask,
                   void* stream);
// As LaunchNmsMask, with `d_idxs` [n] class ids (nullptr: one class): boxes of
// different classes never suppress each other (torchvision.ops.batched_nms).
void LaunchBatchedNmsMask(const float* d_boxes, const int64_t* d_idxs, int64_t n, const NmsOptions& options,
                          uint64_t* d_mask, void* stream);

// The multi-class kernel keeps one block's ranks and removed-bits in shared
// memory, which bounds the boxes it takes (BUTD selects from 300).
constexpr int64_t kMaxMultiClassBoxes = 4096;
// Device workspace LaunchMultiClassNms needs, in uint64 words: n * ceil(n / 64).
inline int64_t MultiClassNmsWorkspaceWords(int64_t n) { return n * NmsMaskWords(n); }

// `d_boxes` [n,4], `d_scores` [n,c] (row-major). Writes `d_keep` [n,c] bytes:
// 1 where class column c keeps box n (as MultiClassNmsMask). `d_workspace`:
// MultiClassNmsWorkspaceWords(n) words, in use until the stream passes the
// launch. REQUIRES n <= kMaxMultiClassBoxes.
void LaunchMultiClassNms(const float* d_boxes, const float* d_scores, int64_t n, int64_t c,
                         const NmsOptions& options, uint64_t* d_workspace, uint8_t* d_keep, void* stream);

// `d_features` [b,ch,h,w], `d_rois` [k,5]. Writes `d_out` [k,ch,ph,pw].
void LaunchRoiPool(const float* d_features, int64_t b, int64_t ch, int64_t h, int64_t w,
                   const float* d_rois, int64_t k, const RoiPoolOptions& options, float* d_out,
                   void* stream);

// Host-array conveniences (copy, launch, synchronize, copy back).
std::vector<int64_t> NmsHost(const float* boxes, const float* scores, int64_t n,
                             const NmsOptions& options);
std::vector<uint8_t> MultiClassNmsHost(const float* boxes, const float* scores, int64_t n, int64_t c,
                                       const NmsOptions& options);
std::vector<float> RoiPoolHost(const float* features, int64_t b, int64_t ch, int64_t h, int64_t w,
                               const float* rois, int64_t k, const RoiPoolOptions& options);

}  // namespace uniter::extractor::ops::cuda
