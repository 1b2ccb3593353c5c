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

// The keys UNITER's finetuning (train_*.py) and pretraining (pretrain.py)
// argparse lists share, same names; the defaults are train_*.py's
// (PretrainOptions sets pretrain.py's where they differ).
struct CommonTrainOptions {
  bool compressed_db = false;
  std::string model_config;
  std::string checkpoint;  // "" = UNITER's init
  std::string output_dir;
  int max_txt_len = 60;
  double conf_th = 0.2;
  int max_bb = 100;
  int min_bb = 10;
  int num_bb = 36;
  int64_t train_batch_size = 4096;  // tokens per batch, padding included
  int64_t val_batch_size = 4096;  // ITM: train_batch_size counts examples
  int gradient_accumulation_steps = 1;
  double learning_rate = 3e-5;
  int64_t valid_steps = 1000;
  int64_t num_train_steps = 100000;
  std::string optim = "adamw";
  double beta1 = 0.9, beta2 = 0.98;  // `betas`
  double dropout = 0.1;
  double weight_decay = 0.01;
  double grad_norm = 2.0;  // -1: no clipping
  int64_t warmup_steps = 4000;
  uint64_t seed = 42;
  // apex O2 in UNITER; here fp16 autocast + dynamic loss scaling on CUDA
  // (pretraining: one loss scaler per task). On the CPU it runs fp32 (one
  // notice): every UNITER config sets it.
  bool fp16 = false;
  int n_workers = 4;  // loader threads
  bool pin_mem = false;  // batches to the GPU through pinned memory, non_blocking
  // Ours, not UNITER's (in hps.json only when given):
  // auto | cpu | cuda | cuda:N; auto = CUDA when LibTorch has it and a GPU is
  // present. "cuda" and auto take GPU LOCAL_RANK under torchrun.
  std::string device = "auto";
  // "" (fp16 decides: fp16 or fp32) | fp32 | fp16 | bf16 (autocast, no loss
  // scaling; CPU or CUDA). Wins over fp16.
  std::string amp_dtype;
  // Not UNITER's: how the gradients of several processes (torchrun/srun, see
  // trainer/dist.h) combine at each update. "mean" (default) is UNITER's
  // hvd.allreduce_(average=True): its N-GPU configs mean what they meant.
  // "sum" adds them as accumulation does: N processes then train exactly as
  // one process with gradient_accumulation_steps × N. One process: no effect.
  std::string grad_reduce = "mean";

  // The options as UNITER's save_training_meta dumps vars(args): every key
  // (and `config`), json.dump(..., indent=4) style.
  std::string hps_json;
};

// The keys of UNITER's train-*.json (train_nlvr2.py's argparse), same names:
// the common ones and these.
struct TrainOptions : CommonTrainOptions {
  std::vector<std::string> train_txt_dbs;  // `train_txt_db` (one) or `train_txt_dbs` (VQA)
  std::vector<std::string> train_img_dbs;
  std::string val_txt_db, val_img_db;
  std::string test_txt_db, test_img_db;  // optional here (UNITER's NLVR2 requires them)
  std::string model = "paired-attn";  // NLVR2 head: paired, triplet, paired-attn
  bool use_img_type = true;
  double lr_mul = 1.0;  // VQA head groups
  // VQA: the ans2label.json UNITER reads from utils/ (not a config key there);
  // "" = 3129 answers named by index.
  std::string ans2label;
  // ITM (train_itm.py / train_itm_hard_negatives.py): negatives per text,
  // hard negatives kept (> 0 selects hard-negative training), images per
  // inference mini-batch, the ranking margin, full evaluation at validation.
  int64_t negative_size = 1;
  int64_t hard_neg_size = 0;
  int64_t inf_minibatch_size = 400;
  double margin = 0.2;
  bool full_val = false;
  // ITM: correct UNITER's bugs instead of reproducing them (see README).
  bool fix_uniter_quirks = false;
  // RE (train_re.py): `mlp` head layers (1, 2); `train_loss` cls or rank (its
  // `margin`, shared with ITM's, and `hard_ratio`; numpy's and Python's
  // generators seeded with `seed` as UNITER's); `decay` (linear), `mask_dir`: accepted.
  int mlp = 1;
  std::string train_loss = "cls";
  double hard_ratio = 0.3;  // (margin: ITM's above)
  std::string decay = "linear";
  std::string mask_dir;
  // VCR (train_vcr.py): how `checkpoint` is read, "pretrain" or "vcr_pretrain".
  std::string checkpoint_from = "pretrain";
};

// The keys accepted for `task`, sorted (what an unknown-key error lists).
std::vector<std::string> TrainOptionKeys(TaskKind task);

// One `--key value...` from the command line ('-' in the key reads as '_').
struct OptionOverride {
  std::string key;
  std::vector<std::string> values;
};
// The `--key value...` tokens a command line left over, in order (`--key=v`
// too); a value before any key throws UsageError.
std::vector<OptionOverride> ParseOptionOverrides(const std::vector<std::string>& args);

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
  int dist_timeout_s = 1800;  // multi-process runs: longest wait for another rank (c10d's default)
  // Called after every optimizer step with (global_step, num_train_steps),
  // on the training thread (a caller's progress display). Optional.
  std::function<void(int64_t, int64_t)> on_step;
  // `--dump-batches N DIR` (not a UNITER key): the first N training
  // micro-batches of this invocation as DIR/batch_000000.npz, ... (ITM hard
  // negatives: batch_000000_i.npz, batch_000001_t.npz, ...: the side the
  // negatives come from) under UNITER's collate key names plus a 0-d float32
  // `loss`: the loss our step computed on that micro-batch, reduced as the
  // task's train_*.py reduces it (NLVR2/VCR mean, VQA/VE mean × answers, ITM
  // mean, RE sum), before loss scaling and before hard-negative ITM's
  // / train_batch_size. Rank 0's micro-batches only. 0 = none.
  int64_t dump_batches = 0;
  std::string dump_batches_dir;
};

// Sets run->dump_batches(_dir) from the command line's `--dump-batches N DIR`
// values; UsageError unless N is a count >= 0.
void SetDumpBatches(const std::vector<std::string>& n_and_dir, RunOptions* run);

struct TrainResult {
  int64_t global_step = 0;
  double val_acc = 0;       // the last validation's accuracy
  double val_loss = 0;
  std::string val_results;  // its results file
  int rank = 0;             // this process's rank in a multi-process run (only rank 0 writes)
  // Metrics under UNITER's names, printed as name=value: ITM the final val_/test_ R@K;
  // RE/VCR the last validation's (valid/acc, ...).
  std::vector<std::pair<std::string, double>> metrics;
};

// Runs the whole finetuning. Everything is checked (dbs, model config,
// checkpoint, output_dir) before output_dir is written, so a bad input leaves
// nothing behind. output_dir absent or empty: a new run. Holding a training
// state (train_state/): the run resumes from the newest one (saved at every
// checkpoint) and ends bit-identical to an uninterrupted run; its options must
// be the same but for output_dir, n_workers, pin_mem and config (else
// UsageError naming the key); a state at num_train_steps returns at once.
// Any other non-empty output_dir: UsageError.
// Under torchrun or srun (trainer/dist.h), every process runs Train: each
// draws the same global batch sequence from the seed and takes its
// micro-batches rank, rank + W, ...; gradients are all-reduced (grad_reduce)
// at every update; validation is sharded the same way and gathered to rank 0,
// which alone writes output_dir (other ranks are quiet). A resume needs the
// same number of processes and output_dir visible to all of them. An error
// on one rank ends every rank; each names its rank ("rank 1 of 2: ...").
// Device and precision (trainer/internal/amp.h): the model's fp32 weights
// live on `device`; an fp16 run (CUDA) autocasts to fp16 with GradScaler's
// dynamic loss scaling (2^16, x2 every 2000 finite steps, /2 and the step
// skipped on inf/nan while the lr schedule advances, as UNITER's apex loop)
// and saves fp16 checkpoints, as UNITER's apex O2 runs did (their model was
// fp16); every other run (fp32, bf16, fp16 configs on the CPU) saves fp32.
// The scaler's state is part of the training state. Resuming is bit-exact on
// the CPU (bf16 included); on CUDA up to the kernels' own nondeterminism.
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
  int64_t batch_size = 10;  // examples per forward pass (inf_nlvr2.py's --batch_size); ITM: images per mini-batch
  bool fix_uniter_quirks = false;  // ITM: keep a finetuned rank_output; R@K without the row-index count
  int mlp = 1;                 // RE head (hps.json's `mlp`)
  std::string split = "test";  // VCR: names results_{split}/ (inf_vcr.py's --split)
  int n_workers = 2;
  // Device and precision, as TrainOptions' and resolved by the same rules
  // (trainer/internal/amp.h): device auto|cpu|cuda|cuda:N (not read from a
  // config: where a model trained says nothing of where it infers); `fp16`
  // and `amp_dtype` from the config, amp_dtype winning. fp16 on the CPU runs
  // fp32 with training's notice; bf16 autocasts on the CPU or CUDA.
  std::string device = "auto";
  bool fp16 = false;
  std::string amp_dtype;
};

// Reads the options above that a train config (`config_json`, from `where`) sets; others are ignored.
void ApplyTrainConfig(const std::string& config_json, const std::string& where, InferOptions* options);

// inf_nlvr2.py's `--train_dir D --ckpt STEP`: checkpoint D/ckpt/model_step_STEP.pt,
// model_config D/log/model.json, the options of D/log/hps.json, and for VQA
// the answers train_vqa.py saved (D/ckpt/ans2label.json, when present).
// UsageError naming the file when the run lacks one (e.g. no such step).
void ApplyTrainDir(TaskKind task, const std::string& train_dir, int64_t ckpt, InferOptions* options);

struct InferResult {
  int64_t examples = 0;
  std::string results;  // the results file (RE: the last txt_db's)
  // Metrics under UNITER's names: ITM scores.json's R@K; RE `{split}-acc(gt|det)`; VCR acc_qa, acc_qar, acc.
  std::vector<std::pair<std::string, double>> metrics;
};

// Writes the argmax per example in the txt_db's order (id2len.json) as
// UNITER does: NLVR2 output_dir/results.csv (`identifier,True|False`); VQA
// output_dir/results_test/results_{ckpt}_all.json (`[{"answer", "question_id"}]`,
// ckpt = N of model_step_N.pt, else the checkpoint's file stem; ids must be
// integers); VE output_dir/results.json ({pairID: label}, db order).
// output_dir may exist; files are written atomically.
// ITM (inf_itm.py): every text × image pair scored, output_dir/scores.json
// and output_dir/results.bin (see trainer/itm_eval.h), the scores fp32
// [texts, images] in save_logits; `results` names scores.json.
// Every task: the model and batches on `device`, each forward under
// autocast; scores reach results, metrics and save_logits as fp32 on the
// CPU. A bad device or amp_dtype throws UsageError before anything is read
// or written.
InferResult Infer(TaskKind task, const InferOptions& options, const RunOptions& run);

// `uniter eval itm`: the metrics of a results.bin (ours or inf_itm.py's)
// against the txt_db's txt2img.json / img2txts.json, as `name=value` lines.
std::string EvalItmResults(const std::string& results_bin, const std::string& txt_db, bool fix_uniter_quirks);

}  // namespace uniter::trainer
