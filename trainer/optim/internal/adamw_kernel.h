// One pass of UNITER's AdamW over a float parameter: reads p, grad, exp_avg,
// exp_avg_sq once and writes p, exp_avg, exp_avg_sq once, where the op-by-op
// form (mul_, add_, mul_, addcmul_, sqrt, add_, addcdiv_, add_) makes eight
// passes. Each element gets ATen's arithmetic in ATen's order (its add_ with
// alpha is a fused multiply-add; addcmul_ and addcdiv_ round each step), so
// the result does not depend on how the range is split across threads.
#pragma once

#include <cstdint>

namespace uniter::trainer::optim {

struct AdamWCoefficients {
  float beta1, one_minus_beta1;  // exp_avg.mul_(b1).add_(g, 1 − b1)
  float beta2, one_minus_beta2;  // exp_avg_sq.mul_(b2).addcmul_(g, g, 1 − b2)
  float eps;                     // √v + eps
  float neg_step_size;           // p.addcdiv_(m, √v + eps, −step_size)
  float neg_decay;               // p.add_(p, −lr·wd); 0 = no decay
  float grad_scale = 1.0f;       // clip_grad_norm_'s grad.mul_(coef), done on the fly (×1 is exact)
};

// Elements [0, n) of the four arrays (n may be a slice of a larger tensor).
void AdamWUpdate(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                 const AdamWCoefficients& c);

}  // namespace uniter::trainer::optim
