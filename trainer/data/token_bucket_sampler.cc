#include "trainer/data/token_bucket_sampler.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "common/error.h"

namespace uniter::trainer::data {

TokenBucketSampler::TokenBucketSampler(std::vector<int64_t> lens, const TokenBucketOptions& options)
    : lens_(std::move(lens)), options_(options) {
  if (options_.bucket_size <= 0 || options_.size_multiple <= 0 || options_.batch_size <= 0)
    throw UsageError("TokenBucketSampler: bucket_size, batch_size and size_multiple must be positive");
}

std::vector<std::vector<int64_t>> TokenBucketSampler::Batches(PyRandom& rng) const {
  std::vector<int64_t> ids(lens_.size());
  std::iota(ids.begin(), ids.end(), 0);
  rng.Shuffle(ids);

  std::vector<std::vector<int64_t>> batches;
  const int64_t n = static_cast<int64_t>(ids.size());
  for (int64_t start = 0; start < n; start += options_.bucket_size) {
    // sorted(..., reverse=True) is stable: equal lengths keep their shuffled order.
    std::vector<int64_t> bucket(ids.begin() + start, ids.begin() + std::min(n, start + options_.bucket_size));
    std::stable_sort(bucket.begin(), bucket.end(), [&](int64_t a, int64_t b) { return lens_[a] > lens_[b]; });

    // max_len is the longest seen so far in the bucket; UNITER never resets it.
    int64_t max_len = 0;
    std::vector<int64_t> batch;
    for (size_t g = 0; g < bucket.size(); g += options_.size_multiple) {
      const size_t g_end = std::min(bucket.size(), g + static_cast<size_t>(options_.size_multiple));
      for (size_t k = g; k < g_end; ++k) max_len = std::max(max_len, lens_[bucket[k]]);
      if (max_len * (static_cast<int64_t>(batch.size()) + options_.size_multiple) > options_.batch_size) {
        if (batch.empty())
          throw UsageError("TokenBucketSampler: batch_size " + std::to_string(options_.batch_size) +
                           " tokens is too small for " + std::to_string(options_.size_multiple) +
                           " examples of length " + std::to_string(max_len) + " (max_tokens too small / max_seq_len too long)");
        batches.push_back(std::move(batch));
        batch.assign(bucket.begin() + g, bucket.begin() + g_end);
      } else {
        batch.insert(batch.end(), bucket.begin() + g, bucket.begin() + g_end);
      }
    }
    if (!options_.droplast && !batch.empty()) batches.push_back(std::move(batch));
  }
  rng.Shuffle(batches);
  return batches;
}

std::vector<int64_t> ShardIndices(int64_t n, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw UsageError("rank " + std::to_string(rank) + " is outside world size " + std::to_string(world));
  std::vector<int64_t> out;
  for (int64_t i = rank; i < n; i += world) out.push_back(i);
  return out;
}

}  // namespace uniter::trainer::data
