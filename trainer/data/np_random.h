// numpy's legacy global generator (np.random.seed / RandomState: MT19937 with
// numpy's own seeding and draws), so UNITER's np.random calls draw the same
// numbers here for the same seed. The MT core is PyRandom's (the same
// generator; only the seeding and the derived draws differ).
#pragma once

#include <cstdint>

#include "trainer/data/py_random.h"

namespace uniter::trainer::data {

// Not thread safe; one instance per stream of draws (as numpy's global one).
class NpRandom {
 public:
  explicit NpRandom(uint64_t seed = 0) { Seed(seed); }

  // np.random.seed(n), 0 ≤ n < 2^32: init_genrand(n) (not init_by_array, as
  // Python's random.seed). UsageError outside that range, as numpy's ValueError.
  void Seed(uint64_t seed);
  // One raw 32-bit output.
  uint32_t NextUint32() { return mt_.NextUint32(); }
  // np.random.random_sample(): 53 bits from two outputs, (a >> 5, b >> 6).
  double RandomSample() { return mt_.Random(); }
  // np.random.uniform(low, high): low + (high − low) · random_sample().
  double Uniform(double low, double high) { return low + (high - low) * RandomSample(); }
  // np.random.randint(low, high) (int64, high exclusive): masked rejection on
  // the range high − 1 − low (32-bit draws up to 2^32 − 1, else 64-bit ones,
  // high word first). UsageError when low ≥ high.
  int64_t RandInt(int64_t low, int64_t high);
  // np.random.choice(n) (replace, no p): randint(0, n).
  int64_t Choice(int64_t n) { return RandInt(0, n); }

  // MT words + position (numpy's get_state()[1:3]; the Gaussian cache is unused).
  PyRandom::State GetState() const { return mt_.GetState(); }
  void SetState(const PyRandom::State& s) { mt_.SetState(s); }

 private:
  uint64_t NextUint64();

  PyRandom mt_;
};

}  // namespace uniter::trainer::data
