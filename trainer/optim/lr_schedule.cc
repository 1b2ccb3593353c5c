#include "trainer/optim/lr_schedule.h"

#include <algorithm>

namespace uniter::trainer::optim {

double WarmupLinear(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  // Python's int / int is a true division in double, as here.
  if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(warmup_steps);
  return std::max(0.0, static_cast<double>(total_steps - step) / static_cast<double>(total_steps - warmup_steps));
}

double LrSched(int64_t global_step, double learning_rate, int64_t warmup_steps, int64_t total_steps) {
  const double lr = learning_rate * WarmupLinear(global_step, warmup_steps, total_steps);
  return lr <= 0 ? 1e-8 : lr;
}

}  // namespace uniter::trainer::optim
