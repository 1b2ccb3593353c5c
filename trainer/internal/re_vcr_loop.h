// train_re.py / inf_re.py and train_vcr.py / inf_vcr.py: their loops differ
// from train_nlvr2.py's (RE: batches of examples in db order, validation per
// epoch, model_epoch_N.pt; VCR: choice rows, two image dbs, Q→A/QA→R
// validation), so Train and Infer hand these tasks here.
#pragma once

#include "trainer/train.h"

namespace uniter::trainer {

TrainResult TrainRe(const TrainOptions& options, const RunOptions& run);
TrainResult TrainVcr(const TrainOptions& options, const RunOptions& run);
InferResult InferRe(const InferOptions& options, const RunOptions& run);
InferResult InferVcr(const InferOptions& options, const RunOptions& run);

}  // namespace uniter::trainer
