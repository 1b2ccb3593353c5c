#include "trainer/data/np_random.h"

#include <string>

#include "common/error.h"

namespace uniter::trainer::data {
namespace {

// The smallest all-ones mask covering `max` (numpy's gen_mask).
uint64_t GenMask(uint64_t max) {
  uint64_t mask = max;
  for (int shift : {1, 2, 4, 8, 16, 32}) mask |= mask >> shift;
  return mask;
}

}  // namespace

void NpRandom::Seed(uint64_t seed) {
  if (seed > 0xFFFFFFFFULL)
    throw UsageError("numpy's seed must be between 0 and 2**32 - 1, got " + std::to_string(seed));
  mt_.SeedGenrand(static_cast<uint32_t>(seed));
}

uint64_t NpRandom::NextUint64() {
  const uint64_t hi = NextUint32();
  return (hi << 32) | NextUint32();
}

int64_t NpRandom::RandInt(int64_t low, int64_t high) {
  if (low >= high) throw UsageError("randint: low >= high (" + std::to_string(low) + ", " + std::to_string(high) + ")");
  const uint64_t rng = static_cast<uint64_t>(high) - 1 - static_cast<uint64_t>(low);
  if (rng == 0) return low;  // no draw, as numpy
  uint64_t v;
  if (rng <= 0xFFFFFFFFULL) {
    if (rng == 0xFFFFFFFFULL) {
      v = NextUint32();
    } else {
      const uint32_t mask = static_cast<uint32_t>(GenMask(rng));
      while ((v = (NextUint32() & mask)) > rng) {
      }
    }
  } else if (rng == ~0ULL) {
    v = NextUint64();
  } else {
    const uint64_t mask = GenMask(rng);
    while ((v = (NextUint64() & mask)) > rng) {
    }
  }
  return static_cast<int64_t>(static_cast<uint64_t>(low) + v);
}

}  // namespace uniter::trainer::data
