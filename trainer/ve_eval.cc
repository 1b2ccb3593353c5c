#include "trainer/ve_eval.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "featdb/img_db.h"  // PythonFloatRepr
#include "trainer/answers.h"
#include "trainer/data/datasets.h"

namespace uniter::trainer {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// pairID → label name from a txt_db's soft targets.
std::map<std::string, std::string> TxtDbLabels(const std::string& dir) {
  const data::TxtTokDb db(dir, -1);
  std::map<std::string, std::string> out;
  for (const std::string& id : db.ids()) {
    const data::TextExample ex = db.Get(id);
    if (!ex.has_soft_target || ex.labels.empty() || ex.labels.size() != ex.scores.size())
      throw FormatError("example has no VE target {labels, scores}", dir + "[" + id + "]");
    const size_t best = std::max_element(ex.scores.begin(), ex.scores.end()) - ex.scores.begin();
    if (ex.labels[best] < 0 || ex.labels[best] >= static_cast<int64_t>(VeLabels().size()))
      throw FormatError("target label " + std::to_string(ex.labels[best]) + " is no VE label (0, 1, 2)",
                        dir + "[" + id + "]");
    out[id] = VeLabels()[ex.labels[best]];
  }
  return out;
}

// pairID → gold_label from SNLI-VE's JSON lines.
std::map<std::string, std::string> AnnotationLabels(const std::string& path) {
  std::istringstream in(ReadAll(path));
  std::map<std::string, std::string> out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      out[j.at("pairID").get<std::string>()] = j.at("gold_label").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
      throw FormatError("line " + std::to_string(line_no) + ": not an SNLI-VE annotation (pairID, gold_label): " +
                            e.what(),
                        path);
    }
  }
  return out;
}

}  // namespace

VeMetrics EvalVe(const std::string& results_json, const std::string& labels) {
  nlohmann::json results;
  try {
    results = nlohmann::json::parse(ReadAll(results_json));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), results_json);
  }
  if (!results.is_object()) throw FormatError("expected {pairID: label}", results_json);
  const auto gold = std::filesystem::is_directory(labels) ? TxtDbLabels(labels) : AnnotationLabels(labels);
  if (gold.empty()) throw FormatError("no labelled examples", labels);
  VeMetrics m;
  std::vector<std::string> missing;
  for (const auto& [id, label] : gold) {
    const auto it = results.find(id);
    if (it == results.end()) {
      missing.push_back(id);
      continue;
    }
    if (!it->is_string()) throw FormatError("prediction for '" + id + "' is not a string", results_json);
    ++m.examples;
    m.correct += it->get<std::string>() == label ? 1 : 0;
  }
  if (!missing.empty()) {
    std::string some;
    for (size_t i = 0; i < std::min<size_t>(3, missing.size()); ++i) some += (i ? ", " : "") + missing[i];
    throw UsageError(results_json + ": " + std::to_string(missing.size()) + " labelled examples have no prediction (" +
                     some + (missing.size() > 3 ? ", ..." : "") + ")");
  }
  m.accuracy = static_cast<double>(m.correct) / static_cast<double>(m.examples);
  return m;
}

std::string FormatVeMetrics(const VeMetrics& m) {
  return "accuracy=" + featdb::PythonFloatRepr(m.accuracy) + "\nexamples=" + std::to_string(m.examples) +
         "\ncorrect=" + std::to_string(m.correct) + "\n";
}

}  // namespace uniter::trainer
