// Non-maximum suppression: single list, batched (one class index per box, as
// torchvision.ops.batched_nms) and multi-class over shared boxes (BUTD's box
// selection: the same ROIs scored for 1600 classes).
//
// Two box conventions exist and both are supported:
//  - kCaffe: what BUTD ran (lib/nms/cpu_nms.pyx with USE_GPU_NMS: False):
//    inclusive pixel boxes, area = (x2 - x1 + 1) * (y2 - y1 + 1), and a box is
//    suppressed when IoU >= threshold.
//  - kTorchvision: torchvision.ops.nms: area = (x2 - x1) * (y2 - y1), and a box
//    is suppressed when IoU > threshold.
// IoU is computed in float in the same operation order as both references, so
// kept indices are identical, not merely close. Ties in score keep the lower
// index first (stable order); the references leave tie order unspecified.
//
// Thread safety: the functions are pure; call them from any thread.
// Tensors: float32 boxes on the CPU, or on a CUDA device in a build with
// UNITER_HAVE_CUDA: then the kernels of cuda_ops.h run on the device's current
// stream, the result stays on that device and equals the CPU op's exactly;
// Nms/BatchedNms wait for the stream once, MultiClassNmsMask does not. A CUDA
// tensor in a CPU-only build is an Error.
#pragma once

namespace at {
class Tensor;
}

namespace uniter::extractor::ops {

enum class BoxConvention {
  kCaffe,        // +1 pixel areas, suppress IoU >= threshold (BUTD)
  kTorchvision,  // continuous areas, suppress IoU > threshold
};

struct NmsOptions {
  // Default: 0.3, BUTD's cfg.TEST.NMS. A double, as in both references.
  double iou_threshold = 0.3;
  // Default: kCaffe.
  BoxConvention convention = BoxConvention::kCaffe;
};

// `boxes` [N,4] (x1,y1,x2,y2), `scores` [N]. Returns int64 [K]: indices of the
// kept boxes in decreasing score order.
at::Tensor Nms(const at::Tensor& boxes, const at::Tensor& scores, const NmsOptions& options);

// As Nms, but boxes only suppress boxes with the same `idxs` (int64 [N]).
// Returns kept indices in decreasing score order (torchvision.ops.batched_nms).
at::Tensor BatchedNms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                      const NmsOptions& options);

// Per-class NMS over shared boxes: `boxes` [N,4], `scores` [N,C]. Returns a bool
// [N,C] mask, true where class c keeps box n after NMS over column c alone.
// Equal to BatchedNms over the N*C (box, class) pairs, but computes the N*N
// overlap matrix once instead of per class.
at::Tensor MultiClassNmsMask(const at::Tensor& boxes, const at::Tensor& scores,
                             const NmsOptions& options);

}  // namespace uniter::extractor::ops
