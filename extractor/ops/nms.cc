#include "extractor/ops/nms.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "common/error.h"
#include "extractor/ops/internal/box_math.h"
#include "extractor/ops/internal/cuda_dispatch.h"

namespace uniter::extractor::ops {
namespace {

using internal::BoxArea;
using internal::Suppresses;

float Offset(const NmsOptions& o) { return o.convention == BoxConvention::kCaffe ? 1.f : 0.f; }
bool SuppressEqual(const NmsOptions& o) { return o.convention == BoxConvention::kCaffe; }

// Checks `boxes`; true when they are on a CUDA device (the CUDA kernels run).
bool CheckBoxes(const at::Tensor& boxes, const char* what) {
  if (boxes.dim() != 2 || boxes.size(1) != 4 || boxes.scalar_type() != at::kFloat)
    throw Error(std::string(what) + ": boxes must be a float32 tensor [N,4], got " +
                c10::str(boxes.sizes()) + " " + std::string(c10::toString(boxes.scalar_type())));
  if (boxes.is_cpu()) return false;
#ifdef UNITER_HAVE_CUDA
  if (boxes.is_cuda()) return true;
#endif
  throw Error(std::string(what) + ": boxes on " + boxes.device().str() +
              ", but this build has only the CPU ops (CUDA needs a CUDA LibTorch and nvcc)");
}

// Indices of `scores` (length n, stride `stride`) by decreasing score; ties
// keep the lower index first.
std::vector<int64_t> SortDescending(const float* scores, int64_t n, int64_t stride) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return scores[a * stride] > scores[b * stride]; });
  return order;
}

// Greedy NMS over `order` (a subset of box ids); appends kept ids to `keep`.
void GreedyNms(const float* boxes, const std::vector<int64_t>& order, const NmsOptions& options,
               std::vector<int64_t>* keep) {
  const float offset = Offset(options);
  const bool eq = SuppressEqual(options);
  const size_t n = order.size();
  std::vector<float> areas(n);
  for (size_t i = 0; i < n; ++i) areas[i] = BoxArea(boxes + 4 * order[i], offset);
  std::vector<uint8_t> suppressed(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (suppressed[i]) continue;
    const float* bi = boxes + 4 * order[i];
    keep->push_back(order[i]);
    for (size_t j = i + 1; j < n; ++j) {
      if (suppressed[j]) continue;
      if (Suppresses(bi, areas[i], boxes + 4 * order[j], areas[j], offset, eq, options.iou_threshold))
        suppressed[j] = 1;
    }
  }
}

at::Tensor ToTensor(const std::vector<int64_t>& v) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kLong)
      .clone();
}

}  // namespace

#ifndef UNITER_HAVE_CUDA
// A CPU-only build has no cuda_dispatch.cc; CheckBoxes refuses CUDA tensors
// before these could be reached.
namespace internal {
at::Tensor NmsCuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, const NmsOptions&) {
  throw Error("Nms: this build has only the CPU ops");
}
at::Tensor MultiClassNmsMaskCuda(const at::Tensor&, const at::Tensor&, const NmsOptions&) {
  throw Error("MultiClassNmsMask: this build has only the CPU ops");
}
}  // namespace internal
#endif

at::Tensor Nms(const at::Tensor& boxes_in, const at::Tensor& scores_in, const NmsOptions& options) {
  const bool cuda = CheckBoxes(boxes_in, "Nms");
  if (scores_in.dim() != 1 || scores_in.size(0) != boxes_in.size(0))
    throw Error("Nms: scores must be [N] with N = " + std::to_string(boxes_in.size(0)));
  if (cuda) return internal::NmsCuda(boxes_in, scores_in, at::Tensor(), options);
  const at::Tensor boxes = boxes_in.contiguous();
  const at::Tensor scores = scores_in.to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<int64_t> keep;
  GreedyNms(boxes.data_ptr<float>(), SortDescending(scores.data_ptr<float>(), scores.size(0), 1), options,
            &keep);
  return ToTensor(keep);
}

at::Tensor BatchedNms(const at::Tensor& boxes_in, const at::Tensor& scores_in, const at::Tensor& idxs_in,
                      const NmsOptions& options) {
  const bool cuda = CheckBoxes(boxes_in, "BatchedNms");
  const int64_t n = boxes_in.size(0);
  if (scores_in.dim() != 1 || scores_in.numel() != n || idxs_in.dim() != 1 || idxs_in.numel() != n)
    throw Error("BatchedNms: scores and idxs must be [N] with N = " + std::to_string(n));
  if (cuda) return internal::NmsCuda(boxes_in, scores_in, idxs_in, options);
  const at::Tensor boxes = boxes_in.contiguous();
  const at::Tensor scores = scores_in.to(torch::kCPU, torch::kFloat).contiguous();
  const at::Tensor idxs = idxs_in.to(torch::kCPU, torch::kLong).contiguous();
  const float* s = scores.data_ptr<float>();
  const int64_t* c = idxs.data_ptr<int64_t>();
  // Score order once; each class takes its boxes in that order.
  const std::vector<int64_t> order = SortDescending(s, n, 1);
  std::vector<std::vector<int64_t>> per_class;
  std::vector<int64_t> class_ids(c, c + n);
  std::sort(class_ids.begin(), class_ids.end());
  class_ids.erase(std::unique(class_ids.begin(), class_ids.end()), class_ids.end());
  per_class.resize(class_ids.size());
  for (int64_t i : order) {
    const auto slot = std::lower_bound(class_ids.begin(), class_ids.end(), c[i]) - class_ids.begin();
    per_class[slot].push_back(i);
  }
  std::vector<int64_t> keep;
  for (const auto& group : per_class) GreedyNms(boxes.data_ptr<float>(), group, options, &keep);
  std::stable_sort(keep.begin(), keep.end(), [&](int64_t a, int64_t b) {
    return s[a] > s[b] || (s[a] == s[b] && a < b);
  });
  return ToTensor(keep);
}

at::Tensor MultiClassNmsMask(const at::Tensor& boxes_in, const at::Tensor& scores_in,
                             const NmsOptions& options) {
  const bool cuda = CheckBoxes(boxes_in, "MultiClassNmsMask");
  const int64_t n = boxes_in.size(0);
  if (scores_in.dim() != 2 || scores_in.size(0) != n)
    throw Error("MultiClassNmsMask: scores must be [N,C] with N = " + std::to_string(n));
  if (cuda) return internal::MultiClassNmsMaskCuda(boxes_in, scores_in, options);
  const at::Tensor boxes = boxes_in.contiguous();
  const at::Tensor scores = scores_in.to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t num_classes = scores.size(1);
  const float* b = boxes.data_ptr<float>();
  const float offset = Offset(options);
  const bool eq = SuppressEqual(options);
  // The overlap test is symmetric, so one N x N bit matrix serves every class.
  const int64_t words = (n + 63) / 64;
  std::vector<float> areas(n);
  for (int64_t i = 0; i < n; ++i) areas[i] = BoxArea(b + 4 * i, offset);
  std::vector<uint64_t> overlaps(n * words, 0);
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (j != i && Suppresses(b + 4 * i, areas[i], b + 4 * j, areas[j], offset, eq, options.iou_threshold))
          overlaps[i * words + j / 64] |= uint64_t{1} << (j % 64);
  });
  at::Tensor mask = torch::zeros({n, num_classes}, torch::kBool);
  bool* m = mask.data_ptr<bool>();
  const float* s = scores.data_ptr<float>();
  at::parallel_for(0, num_classes, 32, [&](int64_t begin, int64_t end) {
    std::vector<uint64_t> removed(words);
    for (int64_t c = begin; c < end; ++c) {
      const std::vector<int64_t> order = SortDescending(s + c, n, num_classes);
      std::fill(removed.begin(), removed.end(), 0);
      for (int64_t i : order) {
        if (removed[i / 64] >> (i % 64) & 1) continue;
        m[i * num_classes + c] = true;
        const uint64_t* row = overlaps.data() + i * words;
        for (int64_t w = 0; w < words; ++w) removed[w] |= row[w];
      }
    }
  });
  return mask;
}

}  // namespace uniter::extractor::ops
