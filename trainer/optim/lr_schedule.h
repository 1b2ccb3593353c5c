// UNITER's learning-rate schedule (optim/sched.py).
#pragma once

#include <cstdint>

namespace uniter::trainer::optim {

// BERT's warmup-linear factor: step/warmup during warmup, then
// max(0, (total − step)/(total − warmup)).
double WarmupLinear(int64_t step, int64_t warmup_steps, int64_t total_steps);

// get_lr_sched: learning_rate · WarmupLinear(global_step); a result ≤ 0 becomes 1e-8.
double LrSched(int64_t global_step, double learning_rate, int64_t warmup_steps, int64_t total_steps);

}  // namespace uniter::trainer::optim
