#include "extractor/ops/roi_pool.h"

#include <torch/torch.h>

#include <cfloat>

#include "common/error.h"
#include "extractor/ops/internal/box_math.h"
#include "extractor/ops/internal/cuda_dispatch.h"

namespace uniter::extractor::ops {

at::Tensor RoiPool(const at::Tensor& features_in, const at::Tensor& rois_in, const RoiPoolOptions& options) {
  if (rois_in.dim() != 2 || rois_in.size(1) != 5)
    throw Error("RoiPool: rois must be [K,5], got " + c10::str(rois_in.sizes()));
#ifdef UNITER_HAVE_CUDA
  // CUDA maps also take fp16/bf16 (autocast); see cuda_dispatch.cc.
  if (features_in.is_cuda() && features_in.dim() == 4 && at::isFloatingType(features_in.scalar_type()))
    return internal::RoiPoolCuda(features_in, rois_in, options);
#endif
  if (features_in.dim() != 4 || features_in.scalar_type() != at::kFloat || !features_in.is_cpu())
    throw Error("RoiPool: features must be a float32 CPU tensor [B,C,H,W]" +
                std::string(features_in.is_cuda() ? " (this build has only the CPU ops)" : "") + ", got " +
                c10::str(features_in.sizes()) + " " + std::string(c10::toString(features_in.scalar_type())) +
                " on " + features_in.device().str());
  const at::Tensor features = features_in.contiguous();
  const at::Tensor rois = rois_in.to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t batch = features.size(0), channels = features.size(1);
  const int height = static_cast<int>(features.size(2)), width = static_cast<int>(features.size(3));
  const int ph_n = options.pooled_height, pw_n = options.pooled_width;
  const int64_t num_rois = rois.size(0);
  at::Tensor out = torch::empty({num_rois, channels, ph_n, pw_n}, torch::kFloat);
  const float* in = features.data_ptr<float>();
  const float* r = rois.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t k = 0; k < num_rois; ++k) {
    const int64_t b = static_cast<int64_t>(r[5 * k]);
    if (b < 0 || b >= batch)
      throw Error("RoiPool: roi " + std::to_string(k) + " has batch index " + std::to_string(b) +
                  " outside [0," + std::to_string(batch) + ")");
  }
  // One task per (roi, channel); bins are recomputed per task (cheap next to the max).
  at::parallel_for(0, num_rois * channels, 64, [&](int64_t begin, int64_t end) {
    for (int64_t kc = begin; kc < end; ++kc) {
      const int64_t k = kc / channels, c = kc % channels;
      const float* roi = r + 5 * k;
      const int64_t b = static_cast<int64_t>(roi[0]);
      const internal::RoiCells cells = internal::ScaleRoi(roi, options.spatial_scale, ph_n, pw_n);
      const float* plane = in + (b * channels + c) * height * width;
      float* dst = o + kc * ph_n * pw_n;
      for (int ph = 0; ph < ph_n; ++ph) {
        int h0, h1;
        internal::BinRange(ph, cells.bin_h, cells.start_h, height, &h0, &h1);
        for (int pw = 0; pw < pw_n; ++pw) {
          int w0, w1;
          internal::BinRange(pw, cells.bin_w, cells.start_w, width, &w0, &w1);
          const bool empty = h1 <= h0 || w1 <= w0;
          float best = empty ? 0.f : -FLT_MAX;
          for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w)
              if (plane[h * width + w] > best) best = plane[h * width + w];
          dst[ph * pw_n + pw] = best;
        }
      }
    }
  });
  return out;
}

}  // namespace uniter::extractor::ops
