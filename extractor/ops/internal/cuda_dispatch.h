// The tensor-level CUDA paths of the ops in nms.h and roi_pool.h. nms.cc and
// roi_pool.cc call these for CUDA tensors; they are defined in
// extractor/ops/cuda_dispatch.cc, which is compiled only when UNITER_HAVE_CUDA
// (a CUDA LibTorch and nvcc). Each enqueues the kernels of cuda_ops.h on the
// current CUDA stream of the input's device; results stay on that device.
// Arguments are validated by the public functions; same contracts as there.
#pragma once

#include "extractor/ops/nms.h"
#include "extractor/ops/roi_pool.h"

namespace at {
class Tensor;
}

namespace uniter::extractor::ops::internal {

// `idxs` undefined: plain NMS. Synchronizes the stream once (the greedy pass
// over the suppression bit mask runs on the host, as torchvision's does).
at::Tensor NmsCuda(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                   const NmsOptions& options);

// Does not synchronize. Above cuda::kMaxMultiClassBoxes boxes (the kernel's
// shared memory) it runs the CPU op and copies the mask back.
at::Tensor MultiClassNmsMaskCuda(const at::Tensor& boxes, const at::Tensor& scores, const NmsOptions& options);

// Synchronizes only to check the batch indices when `rois` are on the GPU.
at::Tensor RoiPoolCuda(const at::Tensor& features, const at::Tensor& rois, const RoiPoolOptions& options);

}  // namespace uniter::extractor::ops::internal
