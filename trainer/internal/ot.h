// UNITER's word-region alignment distance (model/ot.py): cosine costs between
// text and image hidden states, an IPOT transport plan computed without
// gradients, and the distance trace(C·Tᵀ) through which gradients reach C.
#pragma once

#include <ATen/core/Tensor.h>

namespace uniter::trainer {

// 1 − cos(x_i, y_j) for x [B, M, D], y [B, N, D] → [B, M, N]; each row
// normalised as F.normalize(p=2, eps) does.
at::Tensor CostMatrixCosine(const at::Tensor& x, const at::Tensor& y, double eps = 1e-5);

// ot.py's ipot: the transport plan [B, N, M] for costs C [B, M, N], lengths
// x_len [B], y_len [B] (float), paddings x_pad [B, M], y_pad [B, N] and
// joint_pad [B, M, N] (bool, true = padding); `iteration` outer and `k`
// inner Sinkhorn-like steps at proximal strength `beta`. No gradients.
at::Tensor Ipot(const at::Tensor& C, const at::Tensor& x_len, const at::Tensor& x_pad, const at::Tensor& y_len,
                const at::Tensor& y_pad, const at::Tensor& joint_pad, double beta, int64_t iteration, int64_t k);

// ot.py's optimal_transport_dist: [B] distances for txt_emb [B, M, D],
// img_emb [B, N, D] and their paddings (bool, true = padding). UNITER's ITM
// calls it with beta 0.5, 50 iterations, k 1, in fp32.
at::Tensor OptimalTransportDist(const at::Tensor& txt_emb, const at::Tensor& img_emb, const at::Tensor& txt_pad,
                                const at::Tensor& img_pad, double beta = 0.5, int64_t iteration = 50, int64_t k = 1);

}  // namespace uniter::trainer
