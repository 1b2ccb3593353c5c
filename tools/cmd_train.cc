// `uniter train nlvr2|vqa|ve --config train-nlvr2.json [--output_dir D] [--KEY VALUE ...]`:
// UNITER's finetuning, its train-*.json accepted unchanged; any key can be
// given on the command line (`--key value`, `--key=value`, `--key-name` for
// `key_name`; lists as several values), which wins over the file.
#ifdef UNITER_HAVE_TORCH
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/torch_runtime.h"
#include "tools/commands.h"
#include "trainer/train.h"

namespace uniter::tools {
namespace {

struct TrainCliOptions {
  std::string task;
  std::string config;
  bool quiet = false;
  int threads = 0;
  int intra_op_threads = 0;
  int dist_timeout = 1800;
  std::vector<std::string> dump_batches;  // N DIR
};

trainer::TaskKind ParseTask(const std::string& name) {
  if (name == "nlvr2") return trainer::TaskKind::kNlvr2;
  if (name == "vqa") return trainer::TaskKind::kVqa;
  if (name == "ve") return trainer::TaskKind::kVe;
  if (name == "itm") return trainer::TaskKind::kItm;
  if (name == "re") return trainer::TaskKind::kRe;
  if (name == "vcr") return trainer::TaskKind::kVcr;
  throw UsageError("unknown task '" + name + "' (expected nlvr2, vqa, ve, itm, re or vcr)");
}

void RunTrain(const TrainCliOptions& o, const std::vector<std::string>& extras) {
  const trainer::TaskKind task = ParseTask(o.task);
  const std::string config = o.config.empty() ? std::string() : ReadWholeFile(o.config);
  const trainer::TrainOptions opts =
      trainer::ParseTrainOptions(task, config, o.config, trainer::ParseOptionOverrides(extras));
  // LibTorch's thread count is process-wide: the command sets it, the library does not.
  ConfigureTorchThreads(o.threads, o.intra_op_threads);
  KeepFreedMemoryForReuse();
  trainer::RunOptions run;
  run.banner = "train: " + FormatTorchRuntime(DescribeTorchRuntime());
  run.quiet = o.quiet;
  run.threads = o.threads;
  run.dist_timeout_s = o.dist_timeout;
  if (!o.dump_batches.empty()) trainer::SetDumpBatches(o.dump_batches, &run);
  const trainer::TrainResult r = trainer::Train(task, opts, run);
  if (r.rank != 0) return;  // under torchrun/srun rank 0 speaks for the run
  for (const auto& [name, value] : r.metrics) std::printf("%s=%.6f\n", name.c_str(), value);
  if (task == trainer::TaskKind::kItm) {  // train_itm.py's final val/test evaluation
    std::printf("%s: %lld steps\n", opts.output_dir.c_str(), static_cast<long long>(r.global_step));
    return;
  }
  std::printf("%s: %lld steps, val_acc=%.6f val_loss=%.6f (%s)\n", opts.output_dir.c_str(),
              static_cast<long long>(r.global_step), r.val_acc, r.val_loss, r.val_results.c_str());
}

}  // namespace

void SetupTrainCommand(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  CLI::App* sub = app.add_subcommand("train", "finetune UNITER on nlvr2, vqa, ve, itm, re or vcr (UNITER's train_*.py)");
  sub->footer(
      "Options: UNITER's train-*.json keys, from --config, each overridable as --KEY VALUE (--key-name and\n"
      "--key_name alike; betas as two values). A new run needs output_dir absent or empty. Writes log/hps.json,\n"
      "log/model.json, TensorBoard events in log/, ckpt/model_step_N.pt, results/val_results_N_rank0.csv and,\n"
      "at every checkpoint, train_state/ (optimizer, RNGs, data position): the same command on that output_dir\n"
      "resumes a killed run from its last checkpoint to the uninterrupted run's result (options must match).\n"
      "Several processes: torchrun --nproc-per-node=N --no-python uniter train ... (or srun) shards the batches\n"
      "over a c10d group (Gloo on the CPU); --grad_reduce mean (UNITER's, default) or sum; rank 0 writes.\n"
      "Ours: --device auto|cpu|cuda|cuda:N (auto: a GPU when LibTorch has CUDA and one is present; cuda takes\n"
      "GPU LOCAL_RANK under torchrun); --amp_dtype fp32|fp16|bf16 (autocast; fp16 with dynamic loss scaling,\n"
      "CUDA only). UNITER's fp16 means fp16 on CUDA and runs fp32 on the CPU.\n"
      "itm: train_itm.py (train_batch_size texts, negative_size negatives each, ranking loss with margin); with\n"
      "hard_neg_size > 0 train_itm_hard_negatives.py. Under torchrun the ranks share one micro-batch stream\n"
      "(rank r takes micro-batches r, r+N, ..., mining hard negatives within its own) and all-reduce at the\n"
      "update (grad_reduce; UNITER's ITM scripts sum). Prints the final val_/test_ R@K\n"
      "lines. --fix-uniter-quirks: image-retrieval R@K counts only the gt's place (UNITER also counts a matched\n"
      "row index < K), and hard negatives from an image index image slots by each row's own text length\n"
      "(UNITER uses the last sampled text's length); RE training reorders its sentences every epoch (UNITER's\n"
      "shuffle() reorders refs the dataset never reads again, so it never shuffles). The flag is the config key\n"
      "fix_uniter_quirks (--fix-uniter-quirks alone means true).\n"
      "re (train_re.py): batches of train_batch_size sentences in db order, train_loss cls or rank (margin,\n"
      "hard_ratio; negatives drawn from numpy's and Python's generators seeded as UNITER's), validation and ckpt/model_epoch_N.pt\n"
      "each epoch (+ model_epoch_best.pt), results/results_{step}_rank0_final.json; an img_db path containing\n"
      "'coco_gt' holds gt boxes. vcr (train_vcr.py): img_dbs as \"gt_dir;det_dir\", checkpoint_from pretrain |\n"
      "vcr_pretrain, results/results_{step}_final_qa_qar_rank0.json. re resumes from its last epoch, vcr from its last\n"
      "valid_steps checkpoint; both run as one process. RE/VCR print\n"
      "their last validation's metrics as name=value lines (valid/acc; valid/acc_qa, valid/acc_qar, valid/acc).");
  sub->add_option("task", o->task, "nlvr2, vqa, ve, itm, re or vcr")->required();
  sub->add_option("--config", o->config, "UNITER's train-*.json");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->add_option("--threads", o->threads, "LibTorch intra-op and OpenBLAS threads (default: every core)");
  sub->add_option("--intra-op-threads,--intra_op_threads", o->intra_op_threads,
                  "LibTorch's own op threads when other than --threads (OpenBLAS keeps --threads); "
                  "1 is faster with Debian's pthreads OpenBLAS, whose idle GEMM threads spin on the cores");
  sub->add_option("--dist-timeout", o->dist_timeout,
                  "under torchrun/srun: seconds one rank waits for another before failing (default 1800)");
  sub->add_option("--dump-batches,--dump_batches", o->dump_batches,
                  "N DIR: write the first N training micro-batches as DIR/batch_000000.npz, ... (UNITER's collate "
                  "key names + a 0-d float32 `loss`: our step's loss on it, before loss scaling; ITM hard "
                  "negatives: batch_N_i|_t.npz)")
      ->expected(2)
      ->type_name("N DIR");
  sub->allow_extras();
  sub->fallthrough(false);  // keep the --KEY VALUE extras here instead of passing them up
  sub->callback([o, sub] { RunTrain(*o, sub->remaining()); });
}

}  // namespace uniter::tools
#endif  // UNITER_HAVE_TORCH
