// What differs between the pipeline's tasks, one table row each: the
// trainer's kind, how a split converts, how an image file names its
// features, and how the dev metrics are computed. run.cc's stages are the
// same for every task and ask this table. Internal to the pipeline (it
// includes the trainer's and converters' headers, which are private deps).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "converters/convert.h"
#include "pipeline/config.h"
#include "trainer/model.h"

namespace uniter::pipeline {

// What the eval stage has in hand for the dev split.
struct MetricsInput {
  std::string results;      // the infer stage's results file
  std::string annotations;  // the dev annotations
  std::string txt_db;       // the dev txt_db
};

struct TaskSpec {
  const char* name;  // pipeline.json's "task"
  trainer::TaskKind kind;
  // An image file's stem -> the key UNITER's txt_db names it by (no .npz).
  std::string (*feature_id)(const std::string& stem);
  // Runs the converter for one pipeline split; `co.output` is the split's db
  // folder (co's task, annotations, vocab, ... are set).
  converters::ConvertSummary (*convert)(converters::ConvertOptions co, const std::string& split);
  // The dev metrics under the task's own evaluation's names.
  nlohmann::json (*metrics)(const MetricsInput& in);
  // Whether every image a txt_db names must have features before training
  // (the trainer's loader would stop on the first one it misses).
  bool check_features;
};

// The row for `task`; UsageError listing the tasks for an unknown one.
const TaskSpec& TaskFor(const std::string& task);

// The tasks, in table order ("nlvr2, vqa, ve, itm").
std::vector<std::string> TaskNames();

// ITM: the Karpathy split a pipeline split converts (train -> train, dev -> val, test -> test).
std::string KarpathySplit(const std::string& split);

// FormatError naming `annotations` and the first image `txt_db`'s
// txt2img.json names that `nbb_json` (the split's img_db) lacks.
void CheckImagesHaveFeatures(const std::string& txt_db, const std::string& nbb_json, const std::string& annotations,
                             const std::string& features_from);

}  // namespace uniter::pipeline
