// UNITER's MetaLoader task choice (data/loader.py): a pool holding each
// training task's name mix_ratio times; at the start of every accumulation
// group one name is drawn uniformly (random.choice), so a group's
// micro-batches all train one task. (Under several ranks UNITER broadcasts
// rank 0's draw; here every rank draws from the same seeded generator.)
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/data/py_random.h"

namespace uniter::trainer::data {

class TaskMixer {
 public:
  // (task name, mix_ratio ≥ 1) in the config's order; accum_steps ≥ 1.
  TaskMixer(const std::vector<std::pair<std::string, int>>& tasks, int accum_steps);

  // The task of the next micro-batch; draws from `rng` at group starts only.
  const std::string& Next(PyRandom& rng);

  // Micro-batches handed out so far and the current group's task: what a
  // resumed run restores.
  int64_t step() const { return step_; }
  const std::string& current() const { return pool_.at(current_); }
  void Restore(int64_t step, const std::string& current);

  const std::vector<std::string>& pool() const { return pool_; }

 private:
  std::vector<std::string> pool_;
  int accum_steps_;
  int64_t step_ = 0;
  size_t current_ = 0;  // UNITER starts from sampling_pools[0]
};

}  // namespace uniter::trainer::data
