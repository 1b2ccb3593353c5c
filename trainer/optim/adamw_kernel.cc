#include "trainer/optim/internal/adamw_kernel.h"

#include <cmath>

// Built with -O3 -ffp-contract=off -fno-math-errno (trainer/CMakeLists.txt):
// vectorised, no fusing beyond the explicit std::fma, sqrt as one instruction.
namespace uniter::trainer::optim {
namespace {

template <bool kDecay>
__attribute__((always_inline)) inline void Body(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                 int64_t n, const AdamWCoefficients& c) {
  const float b1 = c.beta1, a1 = c.one_minus_beta1, b2 = c.beta2, a2 = c.one_minus_beta2, eps = c.eps,
              step = c.neg_step_size, decay = c.neg_decay, scale = c.grad_scale;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * scale;
    const float mi = std::fma(gi, a1, m[i] * b1);    // mul_, then add_'s fmadd(g, alpha, m)
    const float vi = v[i] * b2 + a2 * gi * gi;       // mul_, then m + (value·g)·g
    const float denom = std::sqrt(vi) + eps;
    float pi = p[i] + step * mi / denom;             // p + (value·m)/d
    if constexpr (kDecay) pi = std::fma(pi, decay, pi);  // add_'s fmadd(p, alpha, p)
    m[i] = mi;
    v[i] = vi;
    p[i] = pi;
  }
}

template <bool kDecay>
__attribute__((target("avx2,fma"))) void BodyAvx2(float* p, const float* g, float* m, float* v, int64_t n,
                                                  const AdamWCoefficients& c) {
  Body<kDecay>(p, g, m, v, n, c);
}

template <bool kDecay>
__attribute__((target("avx512f,avx512vl,avx2,fma"))) void BodyAvx512(float* p, const float* g, float* m, float* v,
                                                                     int64_t n, const AdamWCoefficients& c) {
  Body<kDecay>(p, g, m, v, n, c);
}

enum class Isa { kBase, kAvx2, kAvx512 };

Isa Detect() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  return Isa::kBase;  // std::fma through libm: slow but the same numbers
}

}  // namespace

void AdamWUpdate(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                 const AdamWCoefficients& c) {
  static const Isa isa = Detect();
  const bool decay = c.neg_decay != 0.0f;
  switch (isa) {
    case Isa::kAvx512:
      return decay ? BodyAvx512<true>(param, grad, exp_avg, exp_avg_sq, n, c)
                   : BodyAvx512<false>(param, grad, exp_avg, exp_avg_sq, n, c);
    case Isa::kAvx2:
      return decay ? BodyAvx2<true>(param, grad, exp_avg, exp_avg_sq, n, c)
                   : BodyAvx2<false>(param, grad, exp_avg, exp_avg_sq, n, c);
    case Isa::kBase:
      return decay ? Body<true>(param, grad, exp_avg, exp_avg_sq, n, c)
                   : Body<false>(param, grad, exp_avg, exp_avg_sq, n, c);
  }
}

}  // namespace uniter::trainer::optim
