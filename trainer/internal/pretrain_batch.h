// One collated pretraining micro-batch: a Batch plus what UNITER's
// pretraining collates add (data/mlm.py, mrm.py, itm.py), under its key names.
// Producer: trainer/data (CollatePretrain); consumer: the pretraining model.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "trainer/internal/batch.h"

namespace uniter::trainer {

struct PretrainBatch {
  Batch batch;              // input_ids … gather_index; ITM: targets [B] int64; MRM: img_masks
  at::Tensor txt_labels;    // MLM [B, T] int64, −1 where not masked
  at::Tensor img_mask_tgt;  // MRM [B, L] bool: the masked regions' slots in the joint sequence
  at::Tensor feat_targets;  // MRFR [S, img_dim]: the masked regions' input features
  at::Tensor label_targets; // MRC [S, 1601]: the masked regions' detector soft labels
  // ITM's ot_inputs (itm_ot_collate); ot_scatter undefined = no OT.
  at::Tensor ot_scatter;    // [B, L] int64
  int64_t scatter_max = 0;  // ot_scatter.max()
  at::Tensor txt_pad, img_pad;  // [B, max_tl], [B, max_nbb] bool, true = padding
};

}  // namespace uniter::trainer
