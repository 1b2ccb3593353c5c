#include "trainer/data/masking.h"

#include <algorithm>

#include "common/error.h"

namespace uniter::trainer::data {

MaskedTokens RandomWord(std::vector<int64_t> tokens, int64_t vocab_begin, int64_t vocab_end, int64_t mask_id,
                        PyRandom& rng) {
  if (tokens.empty()) throw UsageError("random_word needs at least one token");
  if (vocab_end <= vocab_begin) throw UsageError("random_word: empty vocab range");
  MaskedTokens out;
  out.labels.reserve(tokens.size());
  for (int64_t& token : tokens) {
    double prob = rng.Random();
    if (prob < 0.15) {
      prob /= 0.15;
      const int64_t original = token;
      if (prob < 0.8) {
        token = mask_id;
      } else if (prob < 0.9) {
        // random.choice(list(range(*vocab_range)))
        token = vocab_begin + static_cast<int64_t>(rng.RandBelow(static_cast<uint64_t>(vocab_end - vocab_begin)));
      }
      out.labels.push_back(original);
    } else {
      out.labels.push_back(-1);
    }
  }
  if (std::all_of(out.labels.begin(), out.labels.end(), [](int64_t l) { return l == -1; })) {
    out.labels[0] = tokens[0];
    tokens[0] = mask_id;
  }
  out.input_ids = std::move(tokens);
  return out;
}

std::vector<bool> ImgMask(double mask_prob, int64_t num_bb, PyRandom& rng) {
  if (num_bb <= 0) throw UsageError("region masking needs at least one region");
  std::vector<bool> mask(static_cast<size_t>(num_bb));
  for (int64_t i = 0; i < num_bb; ++i) mask[i] = rng.Random() < mask_prob;
  if (std::none_of(mask.begin(), mask.end(), [](bool m) { return m; }))
    mask[rng.RandBelow(static_cast<uint64_t>(num_bb))] = true;
  return mask;
}

}  // namespace uniter::trainer::data
