// The ITM entry points behind Train / Infer (trainer/train_itm.cc,
// trainer/itm_infer.cc) and the scoring they share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/internal/itm.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/task_model.h"
#include "trainer/train.h"

namespace uniter::trainer {

TrainResult TrainItm(const TrainOptions& options, const RunOptions& run);
InferResult InferItm(const InferOptions& options, const RunOptions& run);

// utils/itm_eval.py's inference: the model in eval mode under no_grad, each
// text against `img_ids` in mini-batches of `minibatch` images (each
// mini-batch's image rows built once and reused for every text). Returns the
// raw rank scores, row-major [txt_ids, img_ids], fp32 on the CPU. The
// forwards run on `place` (the model must already be there) under its autocast.
std::vector<float> ScoreMatrix(TaskModelImpl& model, const data::ItmDb& db, const std::vector<std::string>& txt_ids,
                               const std::vector<std::string>& img_ids, int64_t minibatch, bool progress,
                               const InferPlacement& place = {});

class DistGroup;
// ScoreMatrix over a process group (nullptr: one process): rank r scores
// texts r, r + W, ... and rank 0 gets the whole matrix in `txt_ids`' order,
// the very values one process computes (every forward has the same rows);
// the other ranks get {}. A collective: every rank calls it.
std::vector<float> ShardedScoreMatrix(TaskModelImpl& model, const data::ItmDb& db,
                                      const std::vector<std::string>& txt_ids, const std::vector<std::string>& img_ids,
                                      int64_t minibatch, bool progress, DistGroup* dist,
                                      const InferPlacement& place = {});

// UniterForImageTextRetrievalHardNeg.forward (training, compute_loss) on one
// collated hard-negative micro-batch, row 0 the gt pair: all rows scored in
// eval mode under no_grad, gt + the `hard_size` best-scored kept, their hinge
// terms [1, hard_size] returned from a forward in the model's own mode.
// `from`: 't' (one text, many images: padding cut to the longest kept row) or
// 'i' (one image, many texts). Unless `fix_uniter_quirks`, an 'i' batch gets
// UNITER's gather index built from the last row's text length. `fed` (optional)
// gets the batch as UNITER's hard-negative dataset yields it (that gather
// index included), before the selection: what --dump-batches writes.
at::Tensor HardNegativeLoss(TaskModelImpl& model, Batch batch, char from, int64_t hard_size, bool fix_uniter_quirks,
                            Batch* fed = nullptr);

// The fp16 rounding UNITER's score matrix holds (score_matrix is float16).
std::vector<float> RoundToHalf(const std::vector<float>& scores, std::vector<uint16_t>* bits = nullptr);

}  // namespace uniter::trainer
