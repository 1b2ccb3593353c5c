// `uniter pipeline run`: raw annotations + images (or BUTD .npz folders) ->
// txt_db + img_db -> a trained UNITER -> predictions -> metrics -> report, as
// one TBB flow graph of stages in one process:
//
//   convert-<split> ----------------------+
//   extract-<split> | pack-<split> --------+-> train -> infer -> eval -> report
//
// Conversion and extraction of every split run concurrently; `train` starts
// once every database is complete. Each stage writes its output folder, then
// its manifest (pipeline/manifest.h) last and atomically. A rerun skips a
// stage whose manifest matches its inputs and options; a stage without one
// starts its output over (convert, extract, pack, infer, eval) or, for
// `train`, continues the killed run from its last checkpoint (the trainer
// resumes bit-identically), so a rerun after kill -9 ends where an
// uninterrupted run ends.
//
// Output root layout:
//   txt_db/<task>_<split>.db/          convert (manifest.json, rejects.jsonl inside)
//   img_db/<task>_<split>/             extract or pack (manifest.json, feat_* db, nbb json)
//   train/run/                         the trainer's output_dir; train/manifest.json
//   infer/results.csv (VQA results_test/results_<step>_all.json, VE results.json,
//   ITM scores.json + results.bin; its txt_db itm_<split>.db holds Karpathy split
//   train/val/test for the train/dev/test split),
//   eval/metrics.json, report.html
// Under torchrun or srun (trainer/dist.h's variables) every rank runs the
// same command: each extract stage is sharded by rank (every N-th image) and
// merged by rank 0, the train stage is the trainer's multi-process run, and
// rank 0 alone runs the rest; the other ranks block on a c10d store until
// rank 0 says what to do (pipeline/ranks.h). A failure on any rank ends every
// rank with one line.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pipeline/config.h"

namespace uniter::pipeline {

// The stages in order; --from/--until name one of these ("features" is
// extract or pack).
inline constexpr const char* kStageNames[] = {"convert", "features", "train", "infer", "eval", "report"};

struct RunPipelineOptions {
  std::string from = "convert";  // stages before it must be complete; it and later ones are redone
  std::string until = "report";  // stages after it do not run
  bool quiet = false;
};

struct PipelineResult {
  std::string report;  // report.html ("" when --until stopped before it)
  std::vector<std::pair<std::string, double>> metrics;  // eval's (accuracy, ...); empty when it did not run
  int stages_run = 0, stages_skipped = 0;
  int rank = 0;  // under torchrun/srun: this process's (only rank 0 runs the stages it counts)
};

// Throws UsageError/IoError/FormatError (one line, naming the stage and file)
// for a run-level failure; record-level ones are the stages' rejects.
PipelineResult RunPipeline(const PipelineConfig& config, const RunPipelineOptions& options);

}  // namespace uniter::pipeline
