// `uniter pretrain --config pretrain-*.json [--KEY VALUE ...]`: UNITER's
// pretraining (pretrain.py), its configs accepted unchanged, any scalar key
// overridable on the command line. `--validate-only --checkpoint F` runs
// pretrain.py's validate() on the config's val_datasets and prints one
// `task: loss=… acc=…` line per val task.
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
#include "trainer/pretrain.h"

namespace uniter::tools {
namespace {

struct PretrainCliOptions {
  std::string config;
  bool validate_only = false;
  bool vcr = false, fix_uniter_quirks = false;  // config keys "vcr" / "fix_uniter_quirks" too
  std::string checkpoint;
  bool quiet = false;
  int threads = 0;
  int intra_op_threads = 0;
  int dist_timeout = 1800;
  std::vector<std::string> dump_batches;  // N DIR
};

void PrintValLog(const trainer::PretrainValLog& v) {
  std::printf("%s: loss=%.6f", v.task.c_str(), v.loss);
  if (v.acc >= 0) std::printf(" acc=%.6f", v.acc);
  std::printf("\n");
}

void RunPretrain(const PretrainCliOptions& o, const std::vector<std::string>& extras) {
  auto overrides = trainer::ParseOptionOverrides(extras);
  if (o.vcr) overrides.push_back({"vcr", {"true"}});
  if (o.fix_uniter_quirks) overrides.push_back({"fix_uniter_quirks", {"true"}});
  if (o.validate_only) {
    if (o.checkpoint.empty()) throw UsageError("--validate-only needs --checkpoint F");
  } else if (!o.checkpoint.empty()) {
    overrides.push_back({"checkpoint", {o.checkpoint}});  // the init checkpoint, as the config key
  }
  const trainer::PretrainOptions opts =
      trainer::ParsePretrainOptions(ReadWholeFile(o.config), o.config, overrides, !o.validate_only);
  ConfigureTorchThreads(o.threads, o.intra_op_threads);
  KeepFreedMemoryForReuse();
  trainer::RunOptions run;
  run.banner = "pretrain: " + FormatTorchRuntime(DescribeTorchRuntime());
  run.quiet = o.quiet;
  run.threads = o.threads;
  run.dist_timeout_s = o.dist_timeout;
  if (!o.dump_batches.empty()) trainer::SetDumpBatches(o.dump_batches, &run);
  if (o.validate_only) {
    for (const auto& v : trainer::ValidatePretrain(opts, o.checkpoint, run)) PrintValLog(v);
    return;
  }
  const trainer::PretrainResult r = trainer::Pretrain(opts, run);
  if (r.rank != 0) return;
  for (const auto& v : r.val) PrintValLog(v);
  std::printf("%s: %lld steps\n", opts.output_dir.c_str(), static_cast<long long>(r.global_step));
}

}  // namespace

void SetupPretrainCommand(CLI::App& app) {
  auto o = std::make_shared<PretrainCliOptions>();
  CLI::App* sub = app.add_subcommand("pretrain", "pretrain UNITER: MLM, MRFR, MRC(-kl), ITM + OT (UNITER's pretrain.py)");
  sub->footer(
      "Options: pretrain.py's keys from --config (train_datasets / val_datasets there only: name, db, img, tasks,\n"
      "mix_ratio), each scalar overridable as --KEY VALUE. Tasks are named {task}_{dataset name} (mlm_coco, ...);\n"
      "each update trains one task drawn by mix_ratio (MetaLoader). Writes log/hps.json, log/model.json,\n"
      "TensorBoard events (loss/{task}, lr, grad_norm, perf/*, valid_{task}/{task}_*), ckpt/model_step_N.pt\n"
      "(UniterForPretraining keys) and train_state/: the same command resumes a killed run bit-identically.\n"
      "torchrun --nproc-per-node=N --no-python uniter pretrain ...: ranks take turns in each task's batches;\n"
      "--grad_reduce sum makes N ranks equal one process with gradient_accumulation_steps x N.\n"
      "--validate-only --checkpoint F: validate F on every val task, one `task: loss=X acc=Y` line each (mrfr\n"
      "has no acc). Validation uses epoch-1 masks and negatives every time. MRC (non-kl) validates (UNITER's\n"
      "validate_mrc crashes on an undefined variable there). Without --validate-only, --checkpoint F sets the\n"
      "init checkpoint (a BERT pytorch_model.bin or a UNITER checkpoint).\n"
      "--vcr: VCR second-stage pretraining (pretrain_vcr.py, pretrain-vcr-*.json unchanged): VCR txt_dbs, img\n"
      "\"gt_dir;det_dir\", tasks mlm/mrfr/mrc/mrckl; the checkpoint loads, then the type embeddings grow to 4\n"
      "rows and the words by 81. UNITER trains/validates on QAR text only (its QA loader is overwritten under\n"
      "the same key): reproduced by default; --fix-uniter-quirks reads QA and QAR.");
  sub->add_option("--config", o->config, "UNITER's pretrain-*.json")->required();
  sub->add_flag("--validate-only", o->validate_only, "only validate --checkpoint on the val datasets");
  sub->add_flag("--vcr", o->vcr, "VCR second-stage pretraining (UNITER's pretrain_vcr.py)");
  sub->add_flag("--fix-uniter-quirks,--fix_uniter_quirks", o->fix_uniter_quirks,
                "--vcr: read QA and QAR text (UNITER keeps only QAR)");
  sub->add_option("--checkpoint", o->checkpoint, "the checkpoint to validate (or to start from)");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->add_option("--threads", o->threads, "LibTorch intra-op and OpenBLAS threads (default: every core)");
  sub->add_option("--intra-op-threads,--intra_op_threads", o->intra_op_threads,
                  "LibTorch's own op threads when other than --threads (OpenBLAS keeps --threads); "
                  "1 is faster with Debian's pthreads OpenBLAS, whose idle GEMM threads spin on the cores");
  sub->add_option("--dist-timeout", o->dist_timeout,
                  "under torchrun/srun: seconds one rank waits for another before failing (default 1800)");
  sub->add_option("--dump-batches,--dump_batches", o->dump_batches,
                  "N DIR: each task's first N training micro-batches as DIR/<task>_<db>_<nnn>.npz (UNITER's collate "
                  "keys, OT inputs as ot_inputs.<key>, plus a 0-d float32 `loss`: our step's loss on it)")
      ->expected(2)
      ->type_name("N DIR");
  sub->allow_extras();
  sub->fallthrough(false);
  sub->callback([o, sub] { RunPretrain(*o, sub->remaining()); });
}

}  // namespace uniter::tools
#endif  // UNITER_HAVE_TORCH
