// model/re.py's `rank` loss: per expression one negative box (the hardest
// non-target with probability hard_ratio, else a random one), then
// clamp(margin + σ(neg) − σ(pos), 0). The draws come from the two global
// generators UNITER's sample_neg_ix uses: numpy's (np.random.uniform) and
// Python's (random.randint), in its order, so a seeded run picks its boxes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "trainer/data/np_random.h"
#include "trainer/data/py_random.h"
#include "trainer/internal/batch.h"

namespace uniter::trainer {

// sample_neg_ix on scores [B, max nbb] (the masked ones Scores returns) and
// the batch's targets [B] / num_bbs: per row, uniform(0, 1) < hard_ratio →
// the first box of the descending (stable) order that is not the target; else
// randint(0, nbb − 1) redrawn until it is not the target. UsageError when a
// row has a single box (UNITER would loop forever) or the hardest
// non-target is a padding slot (UNITER's assert).
std::vector<int64_t> SampleReNegatives(const at::Tensor& scores, const Batch& batch, double hard_ratio,
                                       data::NpRandom& np_rng, data::PyRandom& py_rng);

// The loss (reduction none, [B]) for the given negatives; differentiable in scores.
at::Tensor ReRankLoss(const at::Tensor& scores, const at::Tensor& targets, const std::vector<int64_t>& neg_ix,
                      double margin);

}  // namespace uniter::trainer
