#include "pipeline/config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "pipeline/tasks.h"

namespace uniter::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

enum class Kind { kString, kPath, kInt, kSplitPaths, kTrainConfig };

const std::map<std::string, Kind>& Schema() {
  static const std::map<std::string, Kind> schema = {
      {"task", Kind::kString},          {"annotations", Kind::kSplitPaths},
      {"images", Kind::kSplitPaths},    {"npz", Kind::kSplitPaths},
      {"vocab", Kind::kPath},           {"detector_prototxt", Kind::kPath},
      {"detector_weights", Kind::kPath}, {"train_config", Kind::kTrainConfig},
      {"model_config", Kind::kPath},    {"output", Kind::kPath},
      {"extract_target_size", Kind::kInt}, {"extract_max_size", Kind::kInt},
      {"extract_proposals", Kind::kInt}, {"extract_batch", Kind::kInt},
      {"threads", Kind::kInt},          {"questions", Kind::kSplitPaths},
      {"ans2label", Kind::kPath},
  };
  return schema;
}

const std::vector<std::string> kSplits = {"train", "dev", "test"};

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

Kind KindOf(const std::string& key, const std::string& where) {
  auto it = Schema().find(key);
  if (it == Schema().end())
    throw UsageError("unknown key '" + key + "'; valid keys: " + Join(PipelineKeys()) +
                         " (and train.KEY: a key of the train config)", where);
  return it->second;
}

void CheckSplit(const std::string& key, const std::string& split, const std::string& where) {
  if (std::find(kSplits.begin(), kSplits.end(), split) == kSplits.end())
    throw UsageError("unknown split '" + split + "' in '" + key + "'; valid: " + Join(kSplits), where);
}

// A path from the file is relative to its folder; one from the command line to the working directory.
std::string Resolve(const std::string& p, const fs::path& base) {
  if (p.empty()) return p;
  const fs::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal().string();
}

// The command line's value as the JSON the key holds.
json OverrideValue(Kind kind, const std::string& key, const std::string& value, const std::string& where) {
  if (kind == Kind::kInt) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != value.size()) throw UsageError("'" + key + "' takes an integer, not '" + value + "'", where);
    return v;
  }
  if (kind == Kind::kPath || kind == Kind::kTrainConfig) return fs::absolute(value).lexically_normal().string();
  return value;
}

std::string ReadText(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + what, path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void ApplyOverrides(json& j, const std::vector<std::pair<std::string, std::string>>& overrides,
                    PipelineConfig& c) {
  for (const auto& [raw_key, value] : overrides) {
    std::string key = raw_key;
    std::replace(key.begin(), key.end(), '-', '_');
    const size_t dot = key.find('.');
    if (dot != std::string::npos && key.substr(0, dot) == "train") {
      c.train_overrides.emplace_back(key.substr(dot + 1), value);
      continue;
    }
    const std::string head = key.substr(0, dot);
    const Kind kind = KindOf(head, "--" + raw_key);
    if (kind == Kind::kSplitPaths) {
      if (dot == std::string::npos)
        throw UsageError("give one split: --" + head + ".SPLIT PATH (splits: " + Join(kSplits) + ")", "--" + raw_key);
      const std::string split = key.substr(dot + 1);
      CheckSplit(head, split, "--" + raw_key);
      if (!j.contains(head) || !j[head].is_object()) j[head] = json::object();
      j[head][split] = fs::absolute(value).lexically_normal().string();
      continue;
    }
    if (dot != std::string::npos) throw UsageError("'" + head + "' has no sub-keys", "--" + raw_key);
    j[head] = OverrideValue(kind, head, value, "--" + raw_key);
  }
}

}  // namespace

std::vector<std::string> PipelineKeys() {
  std::vector<std::string> keys;
  for (const auto& [k, kind] : Schema()) keys.push_back(k);
  return keys;
}

PipelineConfig ParsePipelineConfig(const std::string& json_text, const std::string& path,
                                   const std::vector<std::pair<std::string, std::string>>& overrides) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), path);
  }
  if (!j.is_object()) throw FormatError("a pipeline config must be a JSON object", path);
  const fs::path base = fs::absolute(path).parent_path();
  // Paths of the file are resolved first, so the command line's (already absolute) stay as given.
  for (auto& [key, value] : j.items()) {
    const Kind kind = KindOf(key, path);
    const std::string where = path + "[" + key + "]";
    if (kind == Kind::kInt && !value.is_number_integer()) throw FormatError("must be an integer", where);
    if ((kind == Kind::kString || kind == Kind::kPath) && !value.is_string()) throw FormatError("must be a string", where);
    if (kind == Kind::kPath) value = Resolve(value.get<std::string>(), base);
    if (kind == Kind::kTrainConfig) {
      if (value.is_string()) value = Resolve(value.get<std::string>(), base);
      else if (!value.is_object()) throw FormatError("must be a path or a JSON object", where);
    }
    if (kind == Kind::kSplitPaths) {
      if (!value.is_object()) throw FormatError("must be an object {split: path}", where);
      for (auto& [split, p] : value.items()) {
        CheckSplit(key, split, where);
        if (!p.is_string()) throw FormatError("must be a path", where + "[" + split + "]");
        p = Resolve(p.get<std::string>(), base);
      }
    }
  }
  PipelineConfig c;
  c.where = path;
  ApplyOverrides(j, overrides, c);

  auto str = [&](const char* k, std::string* out) {
    if (j.contains(k)) *out = j[k].get<std::string>();
  };
  auto num = [&](const char* k, int* out) {
    if (j.contains(k)) *out = j[k].get<int>();
  };
  auto splits = [&](const char* k, std::map<std::string, std::string>* out) {
    if (j.contains(k)) *out = j[k].get<std::map<std::string, std::string>>();
  };
  str("task", &c.task);
  splits("annotations", &c.annotations);
  splits("questions", &c.questions);
  str("ans2label", &c.ans2label);
  splits("images", &c.images);
  splits("npz", &c.npz);
  str("vocab", &c.vocab);
  str("detector_prototxt", &c.detector_prototxt);
  str("detector_weights", &c.detector_weights);
  str("model_config", &c.model_config);
  str("output", &c.output);
  num("extract_target_size", &c.extract_target_size);
  num("extract_max_size", &c.extract_max_size);
  num("extract_proposals", &c.extract_proposals);
  num("extract_batch", &c.extract_batch);
  num("threads", &c.threads);
  if (j.contains("train_config")) {
    const json& t = j["train_config"];
    if (t.is_object()) {
      c.train_config_json = t.dump();
      c.train_config_where = path + "[train_config]";
    } else {
      c.train_config_where = t.get<std::string>();
      c.train_config_json = ReadText(c.train_config_where, "the train config");
    }
  }

  const std::vector<std::string> tasks = TaskNames();
  if (std::find(tasks.begin(), tasks.end(), c.task) == tasks.end())
    throw UsageError("task '" + c.task + "': the pipeline runs " + Join(tasks), path);
  if (c.task == "vqa") {
    for (const auto& [split, ann] : c.annotations)
      if (!c.questions.count(split)) throw UsageError("vqa: split '" + split + "' has annotations but no 'questions'", path);
  } else if (!c.questions.empty() || !c.ans2label.empty()) {
    throw UsageError("'questions' and 'ans2label' are VQA's; task is " + c.task, path);
  }
  for (const char* split : {"train", "dev"})
    if (!c.annotations.count(split)) throw UsageError(std::string("'annotations' needs the ") + split + " split", path);
  if (c.images.empty() == c.npz.empty()) throw UsageError("give exactly one of 'images' (extract) and 'npz' (pack)", path);
  for (const auto& [split, ann] : c.annotations) {
    const auto& feats = c.extracts() ? c.images : c.npz;
    if (!feats.count(split))
      throw UsageError("split '" + split + "' has annotations but no '" + (c.extracts() ? "images" : "npz") + "'", path);
  }
  if (c.vocab.empty()) throw UsageError("'vocab' is required", path);
  if (c.output.empty()) throw UsageError("'output' is required", path);
  if (c.train_config_json.empty()) throw UsageError("'train_config' is required", path);
  if (c.extracts() && c.detector_weights.empty()) throw UsageError("'detector_weights' is required with 'images'", path);
  return c;
}

PipelineConfig LoadPipelineConfig(const std::string& path,
                                  const std::vector<std::pair<std::string, std::string>>& overrides) {
  return ParsePipelineConfig(ReadText(path, "the pipeline config"), path, overrides);
}

}  // namespace uniter::pipeline
