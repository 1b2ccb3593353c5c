// Python's `random` module generator (MT19937, CPython's seeding and its
// shuffle), so the samplers draw the very permutations UNITER's do for the same
// seed: UNITER calls random.seed(opts.seed) once and every TokenBucketSampler
// shuffle consumes that one generator.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace uniter::trainer::data {

// Not thread safe; one instance per stream of draws (as Python's global one).
class PyRandom {
 public:
  static constexpr int kStateWords = 624;

  explicit PyRandom(uint64_t seed = 0) { Seed(seed); }

  // random.seed(n) for an int n ≥ 0: init_by_array over n's 32-bit words, least significant first.
  void Seed(uint64_t seed);
  // The plain MT19937 init_genrand(s): numpy's legacy RandomState.seed(s) for an int s < 2^32.
  void SeedGenrand(uint32_t s) { InitGenrand(s); }
  // One raw 32-bit output (genrand_uint32).
  uint32_t NextUint32();
  // random.getrandbits(k), 0 ≤ k ≤ 32: the top k bits of one output.
  uint32_t GetRandBits(int k);
  // random._randbelow(n), n ≥ 1: rejection sampling on n.bit_length() bits.
  uint64_t RandBelow(uint64_t n);
  // random.random(): 53 bits from two outputs, (a >> 5, b >> 6), in [0, 1).
  double Random();

  // random.shuffle(x): Fisher-Yates from the end, j = _randbelow(i + 1).
  template <typename T>
  void Shuffle(std::vector<T>& x) {
    for (std::size_t i = x.size(); i-- > 1;) {
      const std::size_t j = static_cast<std::size_t>(RandBelow(i + 1));
      std::swap(x[i], x[j]);
    }
  }

  // The full generator state (for resuming a run): 624 words + position, like random.getstate().
  struct State {
    std::array<uint32_t, kStateWords> mt{};
    int index = kStateWords;
  };
  State GetState() const { return {mt_, index_}; }
  void SetState(const State& s);

 private:
  void InitGenrand(uint32_t s);
  void Twist();

  std::array<uint32_t, kStateWords> mt_{};
  int index_ = kStateWords;
};

}  // namespace uniter::trainer::data
