// `uniter infer nlvr2|vqa|ve --txt_db DB --img_db DB (--train_dir D --ckpt STEP
//  | --checkpoint FILE --model_config JSON) [--config train.json]
//  [--output_dir O] [--save-logits F] [--device D] [--amp_dtype T]`:
// UNITER's inf_nlvr2.py / inf_vqa.py (and VE alike), writing their results
// files (and optionally the raw scores).
#ifdef UNITER_HAVE_TORCH
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "common/error.h"
#include "common/torch_runtime.h"
#include "tools/commands.h"
#include "trainer/train.h"

namespace uniter::tools {
namespace {

struct InferCliOptions {
  trainer::InferOptions infer;
  std::string config;
  std::string ans2label;
  std::string amp_dtype;  // beats the config's fp16 / amp_dtype
  std::string train_dir;
  int64_t ckpt = -1;
  bool quiet = false;
  int threads = 0;
  int intra_op_threads = 0;
};

// Either a training output_dir and a step (inf_nlvr2.py) or the files themselves.
void ResolveModel(trainer::TaskKind task, InferCliOptions& o) {
  const bool by_dir = !o.train_dir.empty();
  if (by_dir != (o.ckpt >= 0)) throw UsageError("--train_dir and --ckpt go together");
  if (by_dir) {
    if (!o.infer.checkpoint.empty() || !o.infer.model_config.empty())
      throw UsageError("give either --train_dir/--ckpt or --checkpoint/--model_config, not both");
    trainer::ApplyTrainDir(task, o.train_dir, o.ckpt, &o.infer);
    if (o.infer.output_dir.empty()) o.infer.output_dir = o.train_dir;  // inf_vqa.py writes there
  } else if (o.infer.checkpoint.empty() || o.infer.model_config.empty()) {
    throw UsageError("name the model: --train_dir D --ckpt STEP, or --checkpoint FILE --model_config JSON");
  }
  if (o.infer.output_dir.empty()) throw UsageError("--output_dir is required (without --train_dir)");
}

void RunInfer(trainer::TaskKind task, InferCliOptions& o) {
  ResolveModel(task, o);
  if (!o.config.empty()) {
    std::ifstream in(o.config, std::ios::binary);
    if (!in) throw IoError("cannot open train config", o.config);
    std::ostringstream s;
    s << in.rdbuf();
    trainer::ApplyTrainConfig(s.str(), o.config, &o.infer);
  }
  if (!o.ans2label.empty()) o.infer.ans2label = o.ans2label;  // the flag beats the config
  if (!o.amp_dtype.empty()) o.infer.amp_dtype = o.amp_dtype;
  ConfigureTorchThreads(o.threads, o.intra_op_threads);
  KeepFreedMemoryForReuse();
  trainer::RunOptions run;
  run.quiet = o.quiet;
  run.threads = o.threads;
  const trainer::InferResult r = trainer::Infer(task, o.infer, run);
  if (task != trainer::TaskKind::kItm)  // inf_itm.py prints only its R@K
    std::printf("%s: %lld examples\n", r.results.c_str(), static_cast<long long>(r.examples));
  for (const auto& [name, value] : r.metrics) std::printf("%s=%.6f\n", name.c_str(), value);
}

void AddSubcommand(CLI::App* infer, const char* name, trainer::TaskKind task, const char* what, const char* classes) {
  auto o = std::make_shared<InferCliOptions>();
  CLI::App* sub = infer->add_subcommand(name, what);
  auto& i = o->infer;
  sub->add_option("--txt_db,--txt-db", i.txt_db, "txt_db folder")->required();
  sub->add_option("--img_db,--img-db", i.img_db, "img_db folder")->required();
  sub->add_option("--train_dir,--train-dir", o->train_dir,
                  "a `uniter train` output_dir: its log/model.json, log/hps.json (and VQA's ckpt/ans2label.json)");
  sub->add_option("--ckpt", o->ckpt, "with --train_dir: the step N of ckpt/model_step_N.pt");
  sub->add_option("--checkpoint", i.checkpoint, "model state dict (ckpt/model_step_N.pt), without --train_dir");
  sub->add_option("--model_config,--model-config", i.model_config, "UNITER model JSON (log/model.json)");
  sub->add_option("--output_dir,--output-dir", i.output_dir,
                  "folder for the results file (default with --train_dir: the train_dir)");
  sub->add_option("--config", o->config,
                  "a train config or log/hps.json (model, use_img_type, img_db options, ans2label, fp16, amp_dtype); "
                  "beats --train_dir's hps.json");
  if (task == trainer::TaskKind::kVcr)
    sub->add_option("--split", i.split, "names the results_{split}/ folder (inf_vcr.py's --split)")->capture_default_str();
  if (task == trainer::TaskKind::kVqa)
    sub->add_option("--ans2label", o->ans2label, "answer → index JSON (default: the config's, else 3129 indices)");
  sub->add_option("--save-logits,--save_logits", i.save_logits,
                  task == trainer::TaskKind::kItm
                      ? std::string("float32 [texts, images] raw scores as .npy, results.bin's txt_ids × img_ids")
                      : std::string("float32 [N, ") + classes + "] scores as .npy, the results file's order");
  if (task == trainer::TaskKind::kItm) {
    i.batch_size = 400;  // inf_itm.py's --batch_size
    sub->add_option("--batch_size,--batch-size,--inf_minibatch_size", i.batch_size,
                    "images per mini-batch (the text repeated over them); the split needs at least this many images")
        ->capture_default_str();
    sub->add_flag("--fix-uniter-quirks,--fix_uniter_quirks", i.fix_uniter_quirks,
                  "keep a checkpoint's own rank_output (inf_itm.py always re-makes it from itm_output), and count "
                  "image-retrieval R@K by the gt's place only (UNITER also counts a matched row index < K)");
  } else {
    sub->add_option("--batch_size,--batch-size", i.batch_size, "examples per forward pass")->capture_default_str();
  }
  sub->add_option("--device", i.device,
                  "auto|cpu|cuda|cuda:N, as `uniter train` (auto: a GPU when LibTorch has CUDA and one is present; "
                  "cuda takes GPU LOCAL_RANK under torchrun)")
      ->capture_default_str();
  sub->add_option("--amp_dtype,--amp-dtype", o->amp_dtype,
                  "fp32|fp16|bf16 autocast for the forwards (default: the config's fp16, else fp32); fp16 needs CUDA "
                  "(on the CPU: fp32 and a notice), bf16 runs on the CPU too; scores are written as fp32");
  sub->add_option("--n_workers,--n-workers", i.n_workers, "loader threads")->capture_default_str();
  sub->add_option("--threads", o->threads, "LibTorch intra-op and OpenBLAS threads (default: every core)");
  sub->add_option("--intra-op-threads,--intra_op_threads", o->intra_op_threads,
                  "LibTorch's own op threads when other than --threads (OpenBLAS keeps --threads); "
                  "1 is faster with Debian's pthreads OpenBLAS, whose idle GEMM threads spin on the cores");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->callback([o, task] { RunInfer(task, *o); });
}

}  // namespace

void SetupInferCommand(CLI::App& app) {
  CLI::App* infer = app.add_subcommand("infer", "a trained model's predictions (UNITER's inf_*.py)");
  infer->require_subcommand(1);
  AddSubcommand(infer, "nlvr2", trainer::TaskKind::kNlvr2,
                "results.csv (identifier,True|False) as inf_nlvr2.py writes it", "2");
  AddSubcommand(infer, "vqa", trainer::TaskKind::kVqa,
                "results_test/results_{ckpt}_all.json ([{answer, question_id}]) as inf_vqa.py writes it",
                "#answers");
  AddSubcommand(infer, "ve", trainer::TaskKind::kVe, "results.json ({pairID: label}) as train_ve.py's results",
                "3");
  AddSubcommand(infer, "itm", trainer::TaskKind::kItm,
                "every text x image pair of the split scored (inf_itm.py): scores.json, results.bin "
                "(pickle of (fp16 scores, txt_ids, img_ids)) and R@1/5/10 as name=value lines; zero-shot from a "
                "pretrained checkpoint works as is; under torchrun (--no-python) each rank scores every N-th text and "
                "rank 0 writes the one-process files",
                "texts, images");
  AddSubcommand(infer, "re", trainer::TaskKind::kRe,
                "inf_re.py: per txt_db (several joined by ':') results_test/results_{ckpt}_{db}_on_{img_dir}_all.json\n"
                "([{sent_id, pred_box, tgt_box}]) and {split}-acc(gt|det)=ACC (IoU > 0.5); --ckpt N reads\n"
                "ckpt/model_epoch_N.pt",
                "max #boxes");
  AddSubcommand(infer, "vcr", trainer::TaskKind::kVcr,
                "inf_vcr.py: results_{split}/results_{ckpt}_all.json ({annot_id: 20 logits}) and .csv (submission\n"
                "layout); --img_db \"gt_dir;det_dir\"; prints acc_qa, acc_qar, acc (zeros without targets);\n"
                "--save-logits rows: one per choice, 20 per example (4 QA, then 4 QA→R per answer)",
                "2");
}

}  // namespace uniter::tools
#endif  // UNITER_HAVE_TORCH
