// UNITER's pretraining run (pretrain.py) behind a LibTorch-free interface:
// the options of its pretrain-*.json files, the run (MetaLoader task mixing,
// per-task loaders, AdamW, warmup-linear schedule, clipping, accumulation,
// one loss scaler per task, per-task validation, checkpoints, TensorBoard
// scalars under UNITER's tags) writing UNITER's output_dir layout:
//   log/hps.json, log/model.json, log/events.out.tfevents.*,
//   ckpt/model_step_{N}.pt (UniterForPretraining's keys),
// plus train_state/state_step_{N}.{pt,json} (what resuming a killed run needs,
// trainer/internal/train_state.h's format; "loop" also holds the task mixer's
// and every task stream's position).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/train.h"

namespace uniter::trainer {

// One entry of train_datasets / val_datasets.
struct PretrainDatasetSpec {
  std::string name;                 // the task names' suffix: `{task}_{name}`
  std::vector<std::string> db, img; // txt_dbs and their img_dbs (val: one each)
  std::vector<std::string> tasks;   // mlm, mrfr, mrc, mrckl, itm
  std::vector<int> mix_ratio;       // train only: one per task
};

// pretrain.py's argparse keys, same names and defaults: the common ones and these.
struct PretrainOptions : CommonTrainOptions {
  PretrainOptions() {  // pretrain.py's defaults where they differ from train_*.py's
    gradient_accumulation_steps = 16;
    warmup_steps = 10000;
  }
  std::vector<PretrainDatasetSpec> train_datasets, val_datasets;
  double mrm_prob = 0.15;
  double itm_neg_prob = 0.5;
  double itm_ot_lambda = 0.0;  // > 0: ITM with word-region alignment (OT)
  // Ours: VCR second-stage pretraining (UNITER's pretrain_vcr.py; `--vcr`):
  // VCR txt_dbs, img entries "gt_dir;det_dir", tasks mlm / mrfr / mrc / mrckl,
  // the model expanded after loading `checkpoint` (4 type rows, 81 more words).
  bool vcr = false;
  // VCR: pretrain_vcr.py builds a QA and a QAR dataset per task under one
  // dict key, so QAR's replaces QA's: it trains and validates on QAR text
  // only. false reproduces that; true reads both (one task over QA then QAR).
  bool fix_uniter_quirks = false;
};

// The keys a pretrain config may hold, sorted.
std::vector<std::string> PretrainOptionKeys();

// defaults < `config_json` < `overrides` (train_datasets / val_datasets only
// from the file, as pretrain.py). Unknown key: UsageError listing the valid
// ones; wrong type or a missing required key: UsageError/FormatError naming
// `config_path` and the key. `for_training` false (validate-only) needs no
// output_dir nor train_datasets.
PretrainOptions ParsePretrainOptions(const std::string& config_json, const std::string& config_path,
                                     const std::vector<OptionOverride>& overrides, bool for_training = true);

// One validation task's val_log (validate_mlm / _mrfr / _mrc / _itm), its
// keys as UNITER names them (mlm: loss, acc, tok_per_s; mrfr: loss,
// feat_per_s; mrc: loss, acc, feat_per_s; itm: valid/loss, valid/acc,
// valid/ex_per_s [, valid/ot_loss, valid/ot_pos, valid/ot_neg]).
struct PretrainValLog {
  std::string task;  // `{task}_{name}`
  std::vector<std::pair<std::string, double>> values;
  double loss = 0;
  double acc = -1;  // −1: the task has none (mrfr)
};

struct PretrainResult {
  int64_t global_step = 0;
  int rank = 0;
  std::vector<PretrainValLog> val;  // the last validation
};

// Runs the pretraining. Inputs are checked before output_dir is written;
// output_dir absent or empty: a new run; holding a training state: resumes
// it bit-identically (same options but output_dir, n_workers, pin_mem,
// config). Under torchrun/srun every rank reads the same per-task batch
// streams and takes its turn in them (global micro-batch k of an update is
// rank k % W's), so W processes with grad_reduce sum train exactly as one
// with gradient_accumulation_steps × W.
PretrainResult Pretrain(const PretrainOptions& options, const RunOptions& run);

// `--validate-only`: the model of `checkpoint` (a UniterForPretraining
// checkpoint) validated on every val task as pretrain.py's validate().
std::vector<PretrainValLog> ValidatePretrain(const PretrainOptions& options, const std::string& checkpoint,
                                             const RunOptions& run);

}  // namespace uniter::trainer
