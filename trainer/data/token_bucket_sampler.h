// UNITER's TokenBucketSampler (data/sampler.py) and rank sharding
// (data/data.py:get_ids_and_lens), draw for draw.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/data/py_random.h"

namespace uniter::trainer::data {

struct TokenBucketOptions {
  int64_t bucket_size = 8192;   // UNITER's BUCKET_SIZE (utils/const.py)
  int64_t batch_size = 0;       // tokens per batch, padding included (max_len · rows)
  bool droplast = false;        // training: drop each bucket's last partial batch
  int64_t size_multiple = 8;    // examples are added in groups of this many
};

// Thread compatible (const after construction).
class TokenBucketSampler {
 public:
  // `lens`: one length per example as UNITER counts it (tl + nbb; NLVR2 paired 2·tl + nbb0 + nbb1).
  TokenBucketSampler(std::vector<int64_t> lens, const TokenBucketOptions& options);

  // One epoch of batches (example indices): shuffle the ids, sort each bucket
  // by length (descending, stable), fill batches of size_multiple groups while
  // max_len · rows ≤ batch_size, shuffle the batches. Consumes `rng` exactly as
  // UNITER's __iter__ consumes Python's global random. Throws UsageError when
  // one group alone exceeds the budget (UNITER's "max_tokens too small").
  std::vector<std::vector<int64_t>> Batches(PyRandom& rng) const;

  size_t size() const { return lens_.size(); }

 private:
  std::vector<int64_t> lens_;
  TokenBucketOptions options_;
};

// UNITER's rank sharding: positions rank, rank + world, ... of [0, n).
std::vector<int64_t> ShardIndices(int64_t n, int rank, int world);

}  // namespace uniter::trainer::data
