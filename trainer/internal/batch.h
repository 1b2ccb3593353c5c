// One collated micro-batch as UNITER's collate functions build it, named as
// UNITER names the keys (data/{nlvr2,vqa,ve}.py). Producers: trainer/data
// (collate); consumers: the model and its heads. Tensors live on the CPU until
// the loop moves them to the device.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace uniter::trainer {

struct Batch {
  // Example ids in row order (NLVR2 paired: one id per example, rows 2k, 2k+1).
  std::vector<std::string> qids;
  at::Tensor input_ids;      // [B, T] int64, [CLS] ids [SEP], padded with 0
  at::Tensor position_ids;   // [1, T] int64, arange(T)
  at::Tensor txt_type_ids;   // [B, T] int64, or undefined (= zeros)
  at::Tensor img_feat;       // [B, N, 2048] float32, padded with 0
  at::Tensor img_pos_feat;   // [B, N, 7] float32, padded with 0
  at::Tensor img_type_ids;   // [B, N] int64, or undefined (= ones); NLVR2: 1/2, pad 0
  at::Tensor img_masks;      // [B, N] bool/uint8 region masks (pretraining), or undefined
  at::Tensor attn_masks;     // [B, L] int64, 1 for the tl_i + nbb_i real slots
  at::Tensor gather_index;   // [B, L] int64, UNITER's get_gather_index
  // Task targets: NLVR2/VE/VCR class ids [B'] int64; VQA/VE soft scores [B, C] float32.
  at::Tensor targets;
  int64_t sample_size = 0;   // ITM: rows per example (gt first, then negatives)
  // RE (data/re.py): per row text length (with CLS/SEP) and box count, and
  // obj_masks [B, max nbb] bool, true on padding boxes.
  std::vector<int64_t> txt_lens, num_bbs;
  at::Tensor obj_masks;
  int64_t num_examples = 0;  // examples (not rows) in the batch
  int64_t num_tokens = 0;    // sum of tl_i + nbb_i over rows (throughput logs)
};

}  // namespace uniter::trainer
