// pipeline.json: what `uniter pipeline run` needs, one JSON object. Keys:
//   task          "nlvr2", "vqa", "ve" or "itm" (image-text retrieval)
//   annotations   {"train": FILE, "dev": FILE}: the task's raw annotation files per split
//                 (NLVR2 and SNLI-VE JSON lines; VQA v2's annotations JSON; ITM Karpathy's
//                 dataset_coco.json / dataset_flickr30k.json, whose train/val/test images
//                 the train/dev/test splits take: the same file may serve every split)
//   questions     VQA only, {"train": FILE, "dev": FILE}: VQA v2's questions JSON (a name
//                 with train2014/val2014 in it, as the real ones, tells the image split)
//   ans2label     VQA only, optional: the answer vocabulary; else built from the
//                 train split's answers (UNITER's >= 9 questions) and used for dev
//   Images are named as their datasets name them: NLVR2 <pair>-img0.png,
//   VQA COCO_<split>_<12 digits>.jpg, SNLI-VE <flickr id>.jpg (ITM either); the
//   features get UNITER's keys (nlvr2_..., coco_<split>_<12 digits>, flickr30k_<12 digits>).
//   An npz folder's files are named by those keys (<key>.npz), as the txt_db names them.
//   images        {"train": DIR, "dev": DIR}: image folders (features extracted), or
//   npz           {"train": DIR, "dev": DIR}: BUTD .npz folders (features packed)
//   vocab         WordPiece vocab.txt
//   detector_prototxt, detector_weights   the BUTD network (extract only; prototxt optional)
//   train_config  UNITER's train-*.json: a path, or the object inline
//   model_config  UNITER's model JSON (else the train config's model_config)
//   output        the output root
//   extract_target_size, extract_max_size, extract_proposals, extract_batch   extractor settings
//   threads       0 = every core
// A command line `--KEY VALUE` overrides a key; `--annotations.dev FILE` one
// split of a map; `--train.KEY VALUE` one key of the train config. An
// unknown key is a UsageError listing the valid ones.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace uniter::pipeline {

struct PipelineConfig {
  std::string task = "nlvr2";
  std::map<std::string, std::string> annotations;  // split -> file
  std::map<std::string, std::string> questions;    // split -> file (VQA)
  std::string ans2label;                           // VQA: "" = from the train split
  std::map<std::string, std::string> images;       // split -> folder (extract)
  std::map<std::string, std::string> npz;          // split -> folder (pack)
  std::string vocab;
  std::string detector_prototxt, detector_weights;
  std::string train_config_json;   // the train config's text
  std::string train_config_where;  // its file, or the pipeline.json for an inline one
  std::vector<std::pair<std::string, std::string>> train_overrides;  // --train.KEY VALUE
  std::string model_config;
  std::string output;
  int extract_target_size = 600;  // BUTD's defaults
  int extract_max_size = 1000;
  int extract_proposals = 300;
  int extract_batch = 1;
  int threads = 0;
  std::string where;  // the pipeline.json, for error messages

  bool extracts() const { return !images.empty(); }
};

// The keys a pipeline.json may hold, sorted.
std::vector<std::string> PipelineKeys();

// Parses `json_text` (read from `path`; relative paths in it are relative to
// the file's folder) with `overrides` (key, value) applied over it.
PipelineConfig ParsePipelineConfig(const std::string& json_text, const std::string& path,
                                   const std::vector<std::pair<std::string, std::string>>& overrides);

// Reads `path` and parses it.
PipelineConfig LoadPipelineConfig(const std::string& path,
                                  const std::vector<std::pair<std::string, std::string>>& overrides);

}  // namespace uniter::pipeline
