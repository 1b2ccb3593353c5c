#include "trainer/data/py_random.h"

#include <bit>

#include "common/error.h"

namespace uniter::trainer::data {
namespace {

constexpr int kN = PyRandom::kStateWords;
constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;

}  // namespace

void PyRandom::InitGenrand(uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < kN; ++i) mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  index_ = kN;
}

void PyRandom::Seed(uint64_t seed) {
  // CPython's random_seed: the key is abs(n) split into 32-bit words; 0 gives the key [0].
  std::vector<uint32_t> key;
  for (uint64_t n = seed; n != 0; n >>= 32) key.push_back(static_cast<uint32_t>(n));
  if (key.empty()) key.push_back(0);
  // init_by_array (MT19937 reference, as CPython's _randommodule.c).
  InitGenrand(19650218U);
  int i = 1, j = 0;
  const int key_length = static_cast<int>(key.size());
  for (int k = kN > key_length ? kN : key_length; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] + static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = kN - 1; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;  // nonzero initial state
  index_ = kN;
}

void PyRandom::Twist() {
  for (int k = 0; k < kN; ++k) {
    const uint32_t y = (mt_[k] & kUpperMask) | (mt_[(k + 1) % kN] & kLowerMask);
    mt_[k] = mt_[(k + kM) % kN] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
  }
  index_ = 0;
}

uint32_t PyRandom::NextUint32() {
  if (index_ >= kN) Twist();
  uint32_t y = mt_[index_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

uint32_t PyRandom::GetRandBits(int k) {
  if (k < 0 || k > 32) throw UsageError("PyRandom::GetRandBits: k must be in [0, 32], got " + std::to_string(k));
  if (k == 0) return 0;
  return NextUint32() >> (32 - k);
}

uint64_t PyRandom::RandBelow(uint64_t n) {
  if (n == 0) throw UsageError("PyRandom::RandBelow: n must be positive");
  const int k = std::bit_width(n);
  if (k > 32) throw UsageError("PyRandom::RandBelow: n ≥ 2^32 is not supported");
  uint64_t r = GetRandBits(k);
  while (r >= n) r = GetRandBits(k);
  return r;
}

void PyRandom::SetState(const State& s) {
  if (s.index < 0 || s.index > kN) throw UsageError("PyRandom::SetState: index out of range");
  mt_ = s.mt;
  index_ = s.index;
}

double PyRandom::Random() {
  const uint32_t a = NextUint32() >> 5, b = NextUint32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

}  // namespace uniter::trainer::data
