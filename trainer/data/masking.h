// UNITER's pretraining masks, drawn from Python's `random` as UNITER draws
// them (data/mlm.py random_word, data/mrm.py _get_img_mask), so a generator
// in the same state masks the same tokens and regions.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/data/py_random.h"

namespace uniter::trainer::data {

struct MaskedTokens {
  std::vector<int64_t> input_ids;  // the tokens after masking
  std::vector<int64_t> labels;     // the original token where masked, else −1
};

// random_word: each token with probability 0.15 is a target; a target becomes
// `mask_id` (80 %), a random id in [vocab_begin, vocab_end) (10 %) or stays
// (10 %). With no target at all, token 0 is masked. One random() per token,
// plus random.choice's draw for a random id.
MaskedTokens RandomWord(std::vector<int64_t> tokens, int64_t vocab_begin, int64_t vocab_end, int64_t mask_id,
                        PyRandom& rng);

// _get_img_mask: each of `num_bb` regions masked with probability
// `mask_prob`; none masked → one drawn by random.choice.
std::vector<bool> ImgMask(double mask_prob, int64_t num_bb, PyRandom& rng);

}  // namespace uniter::trainer::data
