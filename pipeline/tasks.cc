#include "pipeline/tasks.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "converters/vqa_answer.h"
#include "trainer/nlvr2_eval.h"
#include "trainer/ve_eval.h"
#include "trainer/vqa_eval.h"

namespace uniter::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Pad12(const std::string& digits) { return std::string(12 - std::min<size_t>(12, digits.size()), '0') + digits; }

// Image stems -> UNITER's keys. A stem that does not fit keeps its name, and
// examples naming the expected key find no features.
std::string Nlvr2Id(const std::string& stem) { return "nlvr2_" + stem; }

// COCO's COCO_val2014_000000000042 lowercased.
std::string CocoId(const std::string& stem) {
  std::string id = stem;
  std::transform(id.begin(), id.end(), id.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return id;
}

// Flickr30k's 42 as flickr30k_000000000042.
std::string FlickrId(const std::string& stem) {
  const bool digits = !stem.empty() && stem.size() <= 12 && stem.find_first_not_of("0123456789") == std::string::npos;
  return digits ? "flickr30k_" + Pad12(stem) : stem;
}

// Karpathy's files hold COCO (COCO_<split>2014_<id>.jpg) or Flickr30k (<id>.jpg) images.
std::string ItmId(const std::string& stem) {
  const bool digits = !stem.empty() && stem.find_first_not_of("0123456789") == std::string::npos;
  return digits ? FlickrId(stem) : CocoId(stem);
}

converters::ConvertSummary ConvertOne(converters::ConvertOptions co, const std::string&) {
  return converters::RunConvert(co);
}

// `uniter convert itm` writes itm_<dataset>_<karpathy split>.db under its
// output folder: convert one Karpathy split beside the db, then move it in.
converters::ConvertSummary ConvertItm(converters::ConvertOptions co, const std::string& split) {
  const std::string db = co.output;
  const std::string parts = db + ".parts";
  fs::remove_all(parts);
  co.output = parts;
  co.rejects = parts + "/rejects.jsonl";
  co.task_options["split"] = {KarpathySplit(split)};
  converters::ConvertSummary s = converters::RunConvert(co);
  if (s.dbs.size() != 1) throw FormatError("itm converted " + std::to_string(s.dbs.size()) + " dbs, expected 1", parts);
  fs::rename(s.dbs[0], db);
  if (fs::exists(co.rejects)) {
    fs::rename(co.rejects, db + "/rejects.jsonl");
    s.rejects_path = db + "/rejects.jsonl";
  }
  s.dbs = {db};
  fs::remove_all(parts);
  return s;
}

json Nlvr2Metrics(const MetricsInput& in) {
  const trainer::Nlvr2Metrics e = trainer::EvalNlvr2(in.results, in.annotations);
  return {{"accuracy", e.accuracy}, {"consistency", e.consistency}, {"examples", e.examples},
          {"correct", e.correct}, {"sentences", e.sentences}, {"consistent", e.consistent}};
}

json VqaMetrics(const MetricsInput& in) {
  trainer::VqaNormalizer norm;
  norm.process_punctuation = converters::VqaProcessPunctuation;
  norm.process_digit_article = converters::VqaProcessDigitArticle;
  const trainer::VqaMetrics e = trainer::EvalVqa(in.results, in.annotations, norm);
  return {{"accuracy", e.accuracy}, {"overall", e.overall}, {"questions", e.questions}};
}

json VeMetrics(const MetricsInput& in) {
  const trainer::VeMetrics e = trainer::EvalVe(in.results, in.annotations);
  return {{"accuracy", e.accuracy}, {"examples", e.examples}, {"correct", e.correct}};
}

json ReadJsonFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError("cannot open", path);
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), path);
  }
}

// inf_itm.py's scores.json (the R@K Infer computed, under UNITER's names) and
// the number of texts ranked.
json ItmMetrics(const MetricsInput& in) {
  json m = ReadJsonFile(in.results);
  if (!m.is_object() || !m.contains("r_mean")) throw FormatError("not inf_itm.py's scores.json (no r_mean)", in.results);
  m["examples"] = ReadJsonFile(in.txt_db + "/id2len.json").size();
  return m;
}

const std::vector<TaskSpec>& Table() {
  using K = trainer::TaskKind;
  static const std::vector<TaskSpec> table = {
      {"nlvr2", K::kNlvr2, Nlvr2Id, ConvertOne, Nlvr2Metrics, false},
      {"vqa", K::kVqa, CocoId, ConvertOne, VqaMetrics, false},
      {"ve", K::kVe, FlickrId, ConvertOne, VeMetrics, false},
      {"itm", K::kItm, ItmId, ConvertItm, ItmMetrics, true},
  };
  return table;
}

}  // namespace

std::vector<std::string> TaskNames() {
  std::vector<std::string> names;
  for (const TaskSpec& t : Table()) names.emplace_back(t.name);
  return names;
}

const TaskSpec& TaskFor(const std::string& task) {
  for (const TaskSpec& t : Table())
    if (task == t.name) return t;
  std::string names;
  for (const auto& n : TaskNames()) names += (names.empty() ? "" : ", ") + n;
  throw UsageError("task '" + task + "': the pipeline runs " + names);
}

std::string KarpathySplit(const std::string& split) { return split == "dev" ? "val" : split; }

void CheckImagesHaveFeatures(const std::string& txt_db, const std::string& nbb_json, const std::string& annotations,
                             const std::string& features_from) {
  const json nbb = ReadJsonFile(nbb_json);
  const json txt2img = ReadJsonFile(txt_db + "/txt2img.json");
  for (const auto& [id, imgs] : txt2img.items()) {
    const json names = imgs.is_array() ? imgs : json::array({imgs});
    for (const auto& img : names)
      if (img.is_string() && !nbb.contains(img.get<std::string>()))
        throw FormatError("image " + img.get<std::string>() + " (of text " + id + ") has no features in " +
                              features_from,
                          annotations);
  }
}

}  // namespace uniter::pipeline
