// UNITER's collate functions (data/nlvr2.py, vqa.py, ve.py): padding,
// attn_masks, gather_index (data/data.py:get_gather_index) and targets.
#pragma once

#include <functional>
#include <vector>

#include "trainer/data/datasets.h"
#include "trainer/internal/batch.h"

namespace uniter::trainer::data {

// Collates `examples` (in batch order) for `options.task`:
// - NLVR2 paired: rows 2k, 2k+1 = (text, image 0), (text, image 1); img_type_ids 1/2
//   when use_img_type; targets [B] int64 (one per example).
// - NLVR2 triplet: one row per example, images concatenated, types 1…1 2…2.
// - VQA / VE: one row per example; targets [B, num_answers] float32 soft scores
//   (zeros, then labels ← scores), or undefined when no example has a target (eval).
// Padding: input_ids 0, attn_masks 0, img_type_ids 0, features/positions 0.
// Throws UsageError when the batch is empty or mixes examples with and without targets.
// `alloc_feat`, when set, makes the uninitialised float32 img_feat tensor of the
// given sizes (the loader hands out recycled buffers); default at::empty.
using FeatAllocator = std::function<at::Tensor(at::IntArrayRef sizes)>;
Batch Collate(const DatasetOptions& options, int64_t num_answers, const std::vector<Example>& examples,
              const FeatAllocator& alloc_feat = {});

}  // namespace uniter::trainer::data
