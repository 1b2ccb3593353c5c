// `uniter pipeline run pipeline.json [--KEY VALUE ...]`: the whole job (convert,
// extract or pack, train, infer, eval, report) as one flow graph
// (pipeline/run.h); `uniter pipeline demo`: the same on generated inputs
// (pipeline/demo.h), what `make demo` runs.
#ifdef UNITER_HAVE_TORCH
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/torch_runtime.h"
#include "pipeline/config.h"
#include "pipeline/demo.h"
#include "pipeline/run.h"
#include "tools/commands.h"

namespace uniter::tools {
namespace {

struct PipelineCli {
  std::string config;
  pipeline::RunPipelineOptions run;
  pipeline::DemoOptions demo;
};

// `--key value` pairs from what CLI11 left over (everything from the first
// argument it did not know: a prefix command); --from, --until and --quiet
// there are the command's own.
std::vector<std::pair<std::string, std::string>> KeyValues(const std::vector<std::string>& extras,
                                                           pipeline::RunPipelineOptions* run) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < extras.size(); ++i) {
    const std::string& a = extras[i];
    if (a == "--quiet") {
      run->quiet = true;
      continue;
    }
    if ((a == "--from" || a == "--until") && i + 1 < extras.size()) {
      (a == "--from" ? run->from : run->until) = extras[++i];
      continue;
    }
    if (!a.starts_with("--") || a.size() < 3) throw UsageError("expected --KEY VALUE, got '" + a + "'");
    const size_t eq = a.find('=');
    if (eq != std::string::npos) {
      out.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
    } else {
      if (i + 1 >= extras.size()) throw UsageError("'" + a + "' needs a value");
      out.emplace_back(a.substr(2), extras[++i]);
    }
  }
  return out;
}

void Run(const pipeline::PipelineConfig& config, const pipeline::RunPipelineOptions& run) {
  ConfigureTorchThreads(config.threads);
  KeepFreedMemoryForReuse();
  const pipeline::PipelineResult r = pipeline::RunPipeline(config, run);
  if (r.rank != 0) return;  // rank 0 reports for the run
  std::printf("pipeline: %d stages run, %d up to date\n", r.stages_run, r.stages_skipped);
  if (!r.metrics.empty()) {
    std::printf("dev");
    for (const auto& [k, v] : r.metrics) std::printf(" %s=%.4f", k.c_str(), v);
    std::printf("\n");
  }
  if (!r.report.empty()) std::printf("report: %s\n", r.report.c_str());
}

}  // namespace

void SetupPipelineCommand(CLI::App& app) {
  auto o = std::make_shared<PipelineCli>();
  auto action = std::make_shared<std::string>();
  // One level (`pipeline` with an action word), as `uniter train`: CLI11
  // hands a nested subcommand's unknown --KEY VALUE pairs to its parent.
  CLI::App* pipe = app.add_subcommand("pipeline", "raw data -> dbs -> trained model -> metrics -> report.html, one run");
  pipe->footer(
      "uniter pipeline run pipeline.json [--KEY VALUE ...]: run (or resume) the pipeline.\n"
      "uniter pipeline demo [--dir DIR] [--task nlvr2|vqa|ve]: generate a small data set of that task's shape\n"
      "(synthetic images) and run it.\n"
      "Stages: convert-<split> and extract-<split> (images) or pack-<split> (npz) run concurrently; then train,\n"
      "infer (dev), eval (dev), report (<output>/report.html). A stage whose manifest.json matches its inputs is\n"
      "skipped; an interrupted one is redone (train: resumed from its last checkpoint).\n"
      "pipeline.json keys (any as --KEY VALUE; --annotations.SPLIT FILE; --train.KEY VALUE for the train config):\n"
      "  task (nlvr2 vqa ve itm) annotations questions (vqa) ans2label (vqa) images|npz vocab detector_prototxt\n"
      "  detector_weights train_config model_config output\n"
      "  extract_target_size extract_max_size extract_proposals extract_batch threads");
  pipe->add_option("action", *action, "run or demo")->required()->check(CLI::IsMember({"run", "demo"}));
  pipe->add_option("config", o->config, "pipeline.json (run)");
  pipe->add_option("--from", o->run.from, "first stage to (re)do: convert, extract|pack, train, infer, eval, report");
  pipe->add_option("--until", o->run.until, "last stage to run");
  pipe->add_flag("--quiet", o->run.quiet, "no progress display");
  o->demo.dir = "demo-out";
  pipe->add_option("--dir", o->demo.dir, "demo: where inputs and outputs go")->capture_default_str();
  pipe->add_option("--task", o->demo.task, "demo: nlvr2, vqa or ve")->capture_default_str();
  pipe->add_option("--train-pairs", o->demo.train_pairs, "demo: training image pairs")->capture_default_str();
  pipe->add_option("--dev-pairs", o->demo.dev_pairs, "demo: dev image pairs")->capture_default_str();
  pipe->add_option("--steps", o->demo.train_steps, "demo: training steps")->capture_default_str();
  pipe->allow_extras();
  pipe->fallthrough(false);  // its --KEY VALUE pairs stay here, not with `uniter`
  pipe->callback([o, action, pipe] {
    const auto overrides = KeyValues(pipe->remaining(), &o->run);
    std::string path = o->config;
    if (*action == "demo") {
      path = pipeline::WriteDemoInputs(o->demo);
      std::printf("demo inputs: %s\n", path.c_str());
    } else if (path.empty()) {
      throw UsageError("uniter pipeline run needs the pipeline.json");
    }
    Run(pipeline::LoadPipelineConfig(path, overrides), o->run);
  });
}

}  // namespace uniter::tools
#endif  // UNITER_HAVE_TORCH
