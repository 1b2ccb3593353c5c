// `uniter infer nlvr2 --txt_db DB --img_db DB --checkpoint FILE --model_config JSON
//  [--config train.json] --output_dir O [--save-logits O/logits.npy]`: UNITER's
// inf_nlvr2.py, writing its results.csv (and optionally the raw scores).
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
  bool quiet = false;
  int threads = 0;
};

void RunInferNlvr2(InferCliOptions& o) {
  if (!o.config.empty()) {
    std::ifstream in(o.config, std::ios::binary);
    if (!in) throw IoError("cannot open train config", o.config);
    std::ostringstream s;
    s << in.rdbuf();
    trainer::ApplyTrainConfig(s.str(), o.config, &o.infer);
  }
  ConfigureTorchThreads(o.threads);
  trainer::RunOptions run;
  run.quiet = o.quiet;
  run.threads = o.threads;
  const trainer::InferResult r = trainer::InferNlvr2(o.infer, run);
  std::printf("%s: %lld examples\n", r.results.c_str(), static_cast<long long>(r.examples));
}

}  // namespace

void SetupInferCommand(CLI::App& app) {
  CLI::App* infer = app.add_subcommand("infer", "a trained model's predictions (UNITER's inf_*.py)");
  infer->require_subcommand(1);
  auto o = std::make_shared<InferCliOptions>();
  CLI::App* sub = infer->add_subcommand("nlvr2", "results.csv (identifier,True|False) as inf_nlvr2.py writes it");
  auto& i = o->infer;
  sub->add_option("--txt_db,--txt-db", i.txt_db, "txt_db folder")->required();
  sub->add_option("--img_db,--img-db", i.img_db, "img_db folder")->required();
  sub->add_option("--checkpoint", i.checkpoint, "model state dict (ckpt/model_step_N.pt)")->required();
  sub->add_option("--model_config,--model-config", i.model_config, "UNITER model JSON (log/model.json)")->required();
  sub->add_option("--output_dir,--output-dir", i.output_dir, "folder for results.csv")->required();
  sub->add_option("--config", o->config, "the run's train config or log/hps.json (model, use_img_type, img_db options)");
  sub->add_option("--save-logits,--save_logits", i.save_logits, "float32 [N, 2] scores as .npy, results.csv's order");
  sub->add_option("--batch_size,--batch-size", i.batch_size, "examples per forward pass")->capture_default_str();
  sub->add_option("--n_workers,--n-workers", i.n_workers, "loader threads")->capture_default_str();
  sub->add_option("--threads", o->threads, "LibTorch intra-op threads (default: every core)");
  sub->add_flag("--quiet,-q", o->quiet, "no progress output");
  sub->callback([o] { RunInferNlvr2(*o); });
}

}  // namespace uniter::tools
#endif  // UNITER_HAVE_TORCH
