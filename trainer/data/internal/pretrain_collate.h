// UNITER's pretraining collates (data/mlm.py mlm_collate, data/mrm.py
// mrfr_collate / mrc_collate, data/itm.py itm_collate / itm_ot_collate): the
// shared padding and gather_index of Collate, then each task's targets.
#pragma once

#include <vector>

#include "trainer/data/pretrain_datasets.h"
#include "trainer/internal/pretrain_batch.h"

namespace uniter::trainer::data {

// `ot_inputs`: ITM with word-region alignment (itm_ot_lambda > 0) adds
// ot_scatter, scatter_max, txt_pad and img_pad. UsageError on an empty batch.
PretrainBatch CollatePretrain(PretrainTask task, std::vector<PretrainExample> examples, bool ot_inputs);

}  // namespace uniter::trainer::data
