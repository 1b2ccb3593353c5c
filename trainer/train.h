// UNITER's finetuning loop (train_nlvr2.py) behind a LibTorch-free interface:
// the options of UNITER's train-*.json files, and the run itself (data,
// model, AdamW, schedule, clipping, accumulation, validation, checkpoints,
// TensorBoard scalars, results files) writing UNITER's output_dir layout:
//   log/hps.json, log/model.json, log/events.out.tfevents.*,
//   ckpt/model_step_{N}.pt, results/{val,test}_results_{N}_rank0.csv,
// plus train_state/state_step_{N}.{pt,json} (the newest only): what resuming
// a killed run needs (trainer/internal/train_state.h documents the format).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "trainer/model.h"

namespace uniter::trainer {

// The keys of UNITER's train-*.json (train_nlvr2.py's argparse), same names.
struct TrainOptions {
  std::vector<std::string> train_txt_dbs;  // `train_txt_db` (one) or `train_txt_dbs` (VQA)
  std::vector<std::string> train_img_dbs;
  std::string val_txt_db, val_img_db;
  std::string test_txt_db, test_img_db;  // optional here (UNITER's NLVR2 requires them)
  bool compressed_db = false;
  std::string model_config;
  std::string checkpoint;  // "" = UNITER's init
  std::string output_dir;
  std::string model = "paired-attn";  // NLVR2 head: paired, triplet, paired-attn
  bool use_img_type = true;
  int max_txt_len = 60;
  double conf_th = 0.2;
  int max_bb = 100;
  int min_bb = 10;
  int num_bb = 36;
  int64_t train_batch_size = 4096;  // tokens per batch, padding included
  int64_t val_batch_size = 4096;
  int gradient_accumulation_steps = 1;
  double learning_rate = 3e-5;
  double lr_mul = 1.0;  // VQA head groups
  int64_t valid_steps = 1000;
  int64_t num_train_steps = 100000;
  std::string optim = "adamw";
  double beta1 = 0.9, beta2 = 0.98;  // `betas`
  double dropout = 0.1;
  double weight_decay = 0.01;
  double grad_norm = 2.0;  // -1: no clipping
  int64_t warmup_steps = 4000;
  uint64_t seed = 42;
  bool fp16 = false;  // accepted; the CPU loop runs fp32
  int n_workers = 4;  // loader threads
  bool pin_mem = false;
  // VQA: the ans2label.json UNITER reads from utils/ (not a config key there);
  // "" = 3129 answers named by index.
  std::string ans2label;

  // The options as UNITER's save_training_meta dumps vars(args): every key
  // above (and `config`), json.dump(..., indent=4) style.
  std::string hps_json;
};

// The keys accepted for `task`, sorted (what an unknown-key error lists).
std::vector<std::string> TrainOptionKeys(TaskKind task);

// One `--key value...` from the command line ('-' in the key reads as '_').
struct OptionOverride {
  std::string key;
  std::vector<std::string> values;
};

// defaults < `config_json` (a train-*.json's text; "" for none) < `overrides`.
// An unknown key throws UsageError listing the valid ones; a wrong type or a
// missing required key (the dbs, model_config, output_dir) throws
// UsageError/FormatError naming `config_path` and the key.
TrainOptions ParseTrainOptions(TaskKind task, const std::string& config_json, const std::string& config_path,
                               const std::vector<OptionOverride>& overrides);

struct RunOptions {
  bool quiet = false;  // no progress on stderr
  int threads = 0;     // LibTorch intra-op threads (0: every core)
  std::string banner;  // printed (unless quiet) once the inputs checked out
  // Called after every optimizer step with (global_step, num_train_steps),
  // on the training thread (a caller's progress display). Optional.
  std::function<void(int64_t, int64_t)> on_step;
};

struct TrainResult {
  int64_t global_step = 0;
  double val_acc = 0;       // the last validation's accuracy
  double val_loss = 0;
  std::string val_results;  // its results file
};

// Runs the whole finetuning. Everything is checked (dbs, model config,
// checkpoint, output_dir) before output_dir is written, so a bad input leaves
// nothing behind. output_dir absent or empty: a new run. Holding a training
// state (train_state/): the run resumes from the newest one (saved at every
// checkpoint) and ends bit-identical to an uninterrupted run; its options must
// be the same but for output_dir, n_workers, pin_mem and config (else
// UsageError naming the key); a state at num_train_steps returns at once.
// Any other non-empty output_dir: UsageError.
TrainResult Train(TaskKind task, const TrainOptions& options, const RunOptions& run);

}  // namespace uniter::trainer

namespace uniter::trainer {

// UNITER's inf_nlvr2.py / inf_vqa.py (VE likewise): a trained model's
// predictions on one (txt_db, img_db).
struct InferOptions {
  std::string txt_db, img_db;
  std::string checkpoint;    // ckpt/model_step_N.pt
  std::string model_config;  // log/model.json
  std::string output_dir;    // gets the results file
  std::string save_logits;   // "" = none; else float32 [N, C] .npy, rows in the results file's order
  // From the run's train config when given (hps.json / train-*.json keys).
  std::string model = "paired-attn";
  bool use_img_type = true;
  double conf_th = 0.2;
  int max_bb = 100, min_bb = 10, num_bb = 36;
  bool compressed_db = false;
  std::string ans2label;  // VQA: answer names and count; "" = 3129 answers named by index
  int64_t batch_size = 10;  // examples per forward pass (inf_nlvr2.py's --batch_size)
  int n_workers = 2;
};

// Reads the options above that a train config (`config_json`, from `where`) sets; others are ignored.
void ApplyTrainConfig(const std::string& config_json, const std::string& where, InferOptions* options);

struct InferResult {
  int64_t examples = 0;
  std::string results;  // the results file
};

// Writes the argmax per example in the txt_db's order (id2len.json) as
// UNITER does: NLVR2 output_dir/results.csv (`identifier,True|False`); VQA
// output_dir/results_test/results_{ckpt}_all.json (`[{"answer", "question_id"}]`,
// ckpt = N of model_step_N.pt, else the checkpoint's file stem; ids must be
// integers); VE output_dir/results.json ({pairID: label}, db order).
// output_dir may exist; files are written atomically.
InferResult Infer(TaskKind task, const InferOptions& options, const RunOptions& run);

}  // namespace uniter::trainer
