#include "trainer/internal/ot.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

namespace uniter::trainer {

at::Tensor CostMatrixCosine(const at::Tensor& x, const at::Tensor& y, double eps) {
  // F.normalize: x / max(‖x‖₂, eps).
  const at::Tensor xn = x / x.norm(2, {-1}, /*keepdim=*/true).clamp_min(eps).expand_as(x);
  const at::Tensor yn = y / y.norm(2, {-1}, /*keepdim=*/true).clamp_min(eps).expand_as(y);
  return 1 - xn.matmul(yn.transpose(1, 2));
}

at::Tensor Ipot(const at::Tensor& C, const at::Tensor& x_len, const at::Tensor& x_pad, const at::Tensor& y_len,
                const at::Tensor& y_pad, const at::Tensor& joint_pad_in, double beta, int64_t iteration, int64_t k) {
  torch::NoGradGuard no_grad;
  const int64_t b = C.size(0), m = C.size(1), n = C.size(2);
  const auto opts = C.options();
  at::Tensor sigma = at::ones({b, m}, opts) / x_len.unsqueeze(1);
  at::Tensor T = at::ones({b, n, m}, opts);
  at::Tensor A = at::exp(-C.transpose(1, 2) / beta);

  sigma.masked_fill_(x_pad, 0);
  const at::Tensor joint_pad = joint_pad_in.transpose(1, 2);
  T.masked_fill_(joint_pad, 0);
  A.masked_fill_(joint_pad, 0);

  const at::Tensor xl = x_len.unsqueeze(1).unsqueeze(2);
  const at::Tensor yl = y_len.unsqueeze(1).unsqueeze(2);
  // 1e4 where padded keeps delta and sigma ~0 there instead of dividing by 0.
  const at::Tensor x_mask = (x_pad.to(C.scalar_type()) * 1e4).unsqueeze(1);
  const at::Tensor y_mask = (y_pad.to(C.scalar_type()) * 1e4).unsqueeze(1);

  at::Tensor delta;
  for (int64_t it = 0; it < iteration; ++it) {
    const at::Tensor Q = A * T;  // [b, n, m]
    sigma = sigma.view({b, m, 1});
    for (int64_t j = 0; j < k; ++j) {
      delta = 1 / (yl * Q.matmul(sigma).view({b, 1, n}) + y_mask);
      sigma = 1 / (xl * delta.matmul(Q) + x_mask);
    }
    T = delta.view({b, n, 1}) * Q * sigma;
  }
  T.masked_fill_(joint_pad, 0);
  return T;
}

at::Tensor OptimalTransportDist(const at::Tensor& txt_emb, const at::Tensor& img_emb, const at::Tensor& txt_pad,
                                const at::Tensor& img_pad, double beta, int64_t iteration, int64_t k) {
  at::Tensor cost = CostMatrixCosine(txt_emb, img_emb);
  const at::Tensor joint_pad = txt_pad.unsqueeze(-1).logical_or(img_pad.unsqueeze(-2));
  cost = cost.masked_fill(joint_pad, 0);
  const auto dtype = cost.scalar_type();
  const at::Tensor txt_len = (txt_pad.size(1) - txt_pad.sum(1)).to(dtype);
  const at::Tensor img_len = (img_pad.size(1) - img_pad.sum(1)).to(dtype);
  const at::Tensor T = Ipot(cost.detach(), txt_len, txt_pad, img_len, img_pad, joint_pad, beta, iteration, k);
  // trace(cost · Tᵀ-as-stored): T is [B, N, M], cost [B, M, N] → [B, M, M].
  return cost.matmul(T.detach()).diagonal(0, 1, 2).sum(-1);
}

}  // namespace uniter::trainer
