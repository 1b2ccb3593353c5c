#include "trainer/data/task_mixer.h"

#include <algorithm>

#include "common/error.h"

namespace uniter::trainer::data {

TaskMixer::TaskMixer(const std::vector<std::pair<std::string, int>>& tasks, int accum_steps)
    : accum_steps_(accum_steps) {
  if (accum_steps < 1) throw UsageError("gradient_accumulation_steps must be at least 1");
  for (const auto& [name, ratio] : tasks) {
    if (ratio < 1) throw UsageError("mix_ratio of task '" + name + "' must be at least 1");
    pool_.insert(pool_.end(), static_cast<size_t>(ratio), name);
  }
  if (pool_.empty()) throw UsageError("pretraining needs at least one task");
}

const std::string& TaskMixer::Next(PyRandom& rng) {
  if (step_ % accum_steps_ == 0) current_ = static_cast<size_t>(rng.RandBelow(pool_.size()));  // random.choice
  ++step_;
  return pool_[current_];
}

void TaskMixer::Restore(int64_t step, const std::string& current) {
  const auto it = std::find(pool_.begin(), pool_.end(), current);
  if (step < 0 || it == pool_.end()) throw FormatError("training state names unknown task '" + current + "'", "state");
  step_ = step;
  current_ = static_cast<size_t>(it - pool_.begin());
}

}  // namespace uniter::trainer::data
