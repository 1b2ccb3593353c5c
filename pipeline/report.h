// report.html: one self-contained page (inline SVG and CSS, no script, no
// external asset) summing up a pipeline run from its files: the metrics
// (eval's manifest), training curves (the trainer's TensorBoard events, read
// with trainer/tensorboard.h), dataset statistics (txt_db id2len.json, img_db
// nbb json, the stages' rejects files) and each stage's time and throughput
// (the manifests). Numbers a test checks carry ids (`metric-accuracy`,
// `stage-train-seconds`, `curve-loss-last`, ...).
#pragma once

#include <string>
#include <vector>

namespace uniter::pipeline {

struct ReportInputs {
  std::string root, task;
  std::vector<std::string> splits;
  std::vector<std::string> stage_manifests;  // every stage's manifest.json (missing ones are left out)
  std::vector<std::string> txt_dbs;          // per split, for id2len.json
  std::vector<std::string> nbb_jsons;        // per split
  std::string train_log_dir;                 // events.out.tfevents.*
};

// Writes the page atomically. Throws IoError.
void WriteReport(const ReportInputs& in, const std::string& path);

}  // namespace uniter::pipeline
