// `--dump-batches N DIR`: the first N training micro-batches, one .npz each,
// under the key names of UNITER's collate functions plus a 0-d float32 `loss`
// (the loss our step computed on that batch), so UNITER's own model code can
// recompute it from the file. Producers: the training loops; the arrays are
// what the loop fed the model (after collate, before moving to the device).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/internal/batch.h"
#include "trainer/internal/pretrain_batch.h"
#include "trainer/model.h"

namespace uniter::trainer {

// (UNITER key, tensor) in the order written; a nested dict's keys are dotted
// (`ot_inputs.ot_scatter`).
using NamedArrays = std::vector<std::pair<std::string, at::Tensor>>;

// Writes up to `limit` batches into `dir` (created on the first Dump). A
// dumper with limit 0 (the default) never wants one. Pretraining keeps one
// dumper per (task, db) so that each gets its first N.
class BatchDumper {
 public:
  BatchDumper() = default;
  BatchDumper(std::string dir, int64_t limit);

  // Fewer than `limit` written so far.
  bool Wants() const { return written_ < limit_; }
  int64_t written() const { return written_; }
  // `<dir>/<stem>.npz` (atomically; np.savez layout, uncompressed): every
  // array on the CPU in its numpy dtype (int64, float32, bool, uint8,
  // float16, ...; a defined tensor only), then `loss` as a 0-d float32.
  // IoError naming the file on a write failure; UsageError on a dtype numpy
  // lacks or a repeated name.
  void Dump(const std::string& stem, const NamedArrays& arrays, double loss);
  // "batch_000000", "batch_000001", ...: the next finetuning stem (names that
  // sort in the order written).
  std::string NextStem() const;

 private:
  std::string dir_;
  int64_t limit_ = 0;
  int64_t written_ = 0;
};

// A finetuning micro-batch under the keys `task`'s UNITER collate yields:
//   every task: input_ids, position_ids, img_feat, img_pos_feat, attn_masks, gather_index
//   NLVR2 (nlvr2_*_collate): + img_type_ids (when used), targets [examples]
//   VQA / VE (vqa_collate): + targets [B, answers] soft scores
//   ITM (itm_rank_collate): + sample_size (0-d int64)
//   RE (re_collate): + obj_masks, targets, txt_lens, num_bbs (lists as int64 [B])
//   VCR (vcr_collate): + txt_type_ids, targets
NamedArrays BatchArrays(const Batch& batch, TaskKind task);

// A pretraining micro-batch under the keys of UNITER's mlm/mrfr/mrc/itm
// collates: the shared six, then those defined of txt_type_ids,
// img_type_ids, txt_labels (MLM), img_masks, img_mask_tgt, feat_targets
// (MRFR), label_targets (MRC), targets (ITM) and, when OT is on,
// ot_inputs.{ot_scatter, scatter_max (0-d int64), txt_pad, img_pad}.
NamedArrays PretrainBatchArrays(const PretrainBatch& batch);

}  // namespace uniter::trainer
