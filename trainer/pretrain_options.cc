// pretrain-*.json parsing: defaults < config file < command line, every key
// checked against pretrain.py's argparse list.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

#include "common/error.h"
#include "trainer/pretrain.h"
#include "trainer/pretrain_task.h"

namespace uniter::trainer {
namespace {

enum class Kind { kStr, kInt, kDouble, kBool, kDoublePair, kDatasets };

const std::map<std::string, Kind>& KeyKinds() {
  static const std::map<std::string, Kind> kinds = {
      {"train_datasets", Kind::kDatasets}, {"val_datasets", Kind::kDatasets},
      {"compressed_db", Kind::kBool}, {"model_config", Kind::kStr},
      {"checkpoint", Kind::kStr}, {"output_dir", Kind::kStr},
      {"mrm_prob", Kind::kDouble}, {"itm_neg_prob", Kind::kDouble},
      {"itm_ot_lambda", Kind::kDouble}, {"max_txt_len", Kind::kInt},
      {"conf_th", Kind::kDouble}, {"max_bb", Kind::kInt}, {"min_bb", Kind::kInt},
      {"num_bb", Kind::kInt}, {"train_batch_size", Kind::kInt},
      {"val_batch_size", Kind::kInt}, {"gradient_accumulation_steps", Kind::kInt},
      {"learning_rate", Kind::kDouble}, {"valid_steps", Kind::kInt},
      {"num_train_steps", Kind::kInt}, {"optim", Kind::kStr},
      {"betas", Kind::kDoublePair}, {"dropout", Kind::kDouble},
      {"weight_decay", Kind::kDouble}, {"grad_norm", Kind::kDouble},
      {"warmup_steps", Kind::kInt}, {"seed", Kind::kInt}, {"fp16", Kind::kBool},
      {"n_workers", Kind::kInt}, {"pin_mem", Kind::kBool}, {"config", Kind::kStr},
      {"device", Kind::kStr}, {"amp_dtype", Kind::kStr}, {"grad_reduce", Kind::kStr},
      {"vcr", Kind::kBool}, {"fix_uniter_quirks", Kind::kBool},
      // pretrain.py sets opts.rank itself; configs saved from a run's hps.json
      // (pretrain-vcr-*.json) carry it. Accepted, ignored.
      {"rank", Kind::kInt},
  };
  return kinds;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// A command-line value as the key's JSON type.
nlohmann::json FromCli(const OptionOverride& o, Kind kind) {
  const std::string where = "--" + o.key;
  if (kind == Kind::kDatasets) throw UsageError(where + ": datasets are set in the config file only");
  if (o.values.empty()) {
    if (kind == Kind::kBool) return true;  // a bare --fp16
    throw UsageError(where + " needs a value");
  }
  auto scalar = [&](const std::string& v) -> nlohmann::json {
    if (kind == Kind::kStr) return v;
    if (kind == Kind::kBool) {
      if (v == "true" || v == "1" || v == "True") return true;
      if (v == "false" || v == "0" || v == "False") return false;
      throw UsageError(where + ": '" + v + "' is not true or false");
    }
    try {
      size_t used = 0;
      if (kind == Kind::kInt) {
        const long long n = std::stoll(v, &used);
        if (used == v.size()) return n;
      } else {
        const double d = std::stod(v, &used);
        if (used == v.size()) return d;
      }
    } catch (const std::exception&) {
    }
    throw UsageError(where + ": '" + v + "' is not a number");
  };
  if (kind != Kind::kDoublePair) {
    if (o.values.size() != 1) throw UsageError(where + " takes one value");
    return scalar(o.values[0]);
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : o.values) list.push_back(scalar(v));
  return list;
}

template <typename T>
T Get(const nlohmann::json& j, const std::string& key, const std::string& where) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw FormatError("key '" + key + "' has the wrong type or is missing", where);
  }
}

std::vector<PretrainDatasetSpec> ParseDatasets(const nlohmann::json& list, const std::string& key,
                                               const std::string& where, bool train) {
  if (!list.is_array()) throw FormatError("key '" + key + "' must be a list of datasets", where);
  std::vector<PretrainDatasetSpec> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& d = list[i];
    const std::string at = where + ": " + key + "[" + std::to_string(i) + "]";
    if (!d.is_object()) throw FormatError("must be an object", at);
    for (const auto& [k, v] : d.items())
      if (k != "name" && k != "db" && k != "img" && k != "tasks" && k != "mix_ratio")
        throw UsageError(at + ": unknown key '" + k + "' (valid: db, img, mix_ratio, name, tasks)");
    PretrainDatasetSpec s;
    s.name = Get<std::string>(d, "name", at);
    s.db = Get<std::vector<std::string>>(d, "db", at);
    s.img = Get<std::vector<std::string>>(d, "img", at);
    s.tasks = Get<std::vector<std::string>>(d, "tasks", at);
    if (train) s.mix_ratio = Get<std::vector<int>>(d, "mix_ratio", at);
    if (s.db.empty() || s.db.size() != s.img.size())
      throw UsageError(at + ": 'db' and 'img' need as many entries, at least one");
    if (!train && s.db.size() != 1) throw UsageError(at + ": a validation dataset has one db and one img");
    if (s.tasks.empty()) throw UsageError(at + ": 'tasks' is empty");
    if (train && s.mix_ratio.size() != s.tasks.size())
      throw UsageError(at + ": 'mix_ratio' needs one entry per task");
    for (int r : s.mix_ratio)
      if (r < 1) throw UsageError(at + ": 'mix_ratio' entries must be positive");
    for (const auto& t : s.tasks) ParsePretrainTask(t);  // UsageError naming an unknown task
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::vector<std::string> PretrainOptionKeys() {
  std::vector<std::string> keys;
  for (const auto& [k, kind] : KeyKinds()) keys.push_back(k);
  return keys;
}

PretrainOptions ParsePretrainOptions(const std::string& config_json, const std::string& config_path,
                                     const std::vector<OptionOverride>& overrides, bool for_training) {
  const std::string where = config_path.empty() ? "command line" : config_path;
  nlohmann::json j = nlohmann::json::object();
  if (!config_json.empty()) {
    try {
      j = nlohmann::json::parse(config_json);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("not JSON: ") + e.what(), where);
    }
    if (!j.is_object()) throw FormatError("a pretrain config must be a JSON object", where);
  }
  const auto& kinds = KeyKinds();
  auto check_key = [&](const std::string& key, const std::string& from) {
    if (!kinds.count(key))
      throw UsageError(from + ": unknown option '" + key + "' (valid: " + Join(PretrainOptionKeys()) + ")");
  };
  for (const auto& [key, value] : j.items()) check_key(key, where);
  for (const auto& o : overrides) {
    std::string key = o.key;
    std::replace(key.begin(), key.end(), '-', '_');
    check_key(key, "command line");
    j[key] = FromCli({key, o.values}, kinds.at(key));
  }

  PretrainOptions t;
  auto has = [&](const char* k) { return j.contains(k) && !j.at(k).is_null(); };
  auto str = [&](const char* k, std::string* out) { if (has(k)) *out = Get<std::string>(j, k, where); };
  auto num = [&](const char* k, auto* out) { if (has(k)) *out = Get<std::decay_t<decltype(*out)>>(j, k, where); };
  if (has("train_datasets")) t.train_datasets = ParseDatasets(j.at("train_datasets"), "train_datasets", where, true);
  if (has("val_datasets")) t.val_datasets = ParseDatasets(j.at("val_datasets"), "val_datasets", where, false);
  num("compressed_db", &t.compressed_db);
  str("model_config", &t.model_config);
  str("checkpoint", &t.checkpoint);
  str("output_dir", &t.output_dir);
  num("mrm_prob", &t.mrm_prob);
  num("itm_neg_prob", &t.itm_neg_prob);
  num("itm_ot_lambda", &t.itm_ot_lambda);
  num("max_txt_len", &t.max_txt_len);
  num("conf_th", &t.conf_th);
  num("max_bb", &t.max_bb);
  num("min_bb", &t.min_bb);
  num("num_bb", &t.num_bb);
  num("train_batch_size", &t.train_batch_size);
  num("val_batch_size", &t.val_batch_size);
  num("gradient_accumulation_steps", &t.gradient_accumulation_steps);
  num("learning_rate", &t.learning_rate);
  num("valid_steps", &t.valid_steps);
  num("num_train_steps", &t.num_train_steps);
  str("optim", &t.optim);
  if (has("betas")) {
    const auto b = Get<std::vector<double>>(j, "betas", where);
    if (b.size() != 2) throw FormatError("key 'betas' needs two numbers", where);
    t.beta1 = b[0];
    t.beta2 = b[1];
  }
  num("dropout", &t.dropout);
  num("weight_decay", &t.weight_decay);
  num("grad_norm", &t.grad_norm);
  num("warmup_steps", &t.warmup_steps);
  num("seed", &t.seed);
  num("fp16", &t.fp16);
  num("n_workers", &t.n_workers);
  num("pin_mem", &t.pin_mem);
  str("device", &t.device);
  str("amp_dtype", &t.amp_dtype);
  str("grad_reduce", &t.grad_reduce);
  num("vcr", &t.vcr);
  num("fix_uniter_quirks", &t.fix_uniter_quirks);

  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw UsageError(where + ": " + what);
  };
  if (for_training) {
    need(!t.train_datasets.empty(), "train_datasets is required");
    need(!t.output_dir.empty(), "output_dir is required");
  }
  need(!t.val_datasets.empty(), "val_datasets is required");
  need(!t.model_config.empty(), "model_config is required");
  need(t.optim == "adamw", "optim '" + t.optim + "' is not supported (adamw)");
  need(t.train_batch_size > 0 && t.val_batch_size > 0, "train_batch_size and val_batch_size must be positive");
  need(t.gradient_accumulation_steps > 0, "gradient_accumulation_steps must be positive");
  need(t.valid_steps > 0 && t.num_train_steps > 0, "valid_steps and num_train_steps must be positive");
  need(t.dropout >= 0 && t.dropout < 1, "dropout must be in [0, 1)");
  need(t.mrm_prob >= 0 && t.mrm_prob <= 1 && t.itm_neg_prob >= 0 && t.itm_neg_prob <= 1,
       "mrm_prob and itm_neg_prob must be in [0, 1]");
  need(t.itm_ot_lambda >= 0, "itm_ot_lambda must not be negative");
  need(t.grad_reduce == "mean" || t.grad_reduce == "sum", "grad_reduce '" + t.grad_reduce + "' is not mean or sum");
  need(t.n_workers >= 0, "n_workers must not be negative");
  need(t.amp_dtype.empty() || t.amp_dtype == "fp32" || t.amp_dtype == "fp16" || t.amp_dtype == "bf16",
       "amp_dtype '" + t.amp_dtype + "' is not fp32, fp16 or bf16");
  if (t.vcr)  // pretrain_vcr.py's create_dataloaders knows mlm, mrfr and mrc*
    for (const auto* sets : {&t.train_datasets, &t.val_datasets})
      for (const auto& d : *sets)
        for (const auto& task : d.tasks)
          need(ParsePretrainTask(task) != PretrainTask::kItm,
               "dataset '" + d.name + "': VCR pretraining has no task '" + task + "' (mlm, mrfr, mrc, mrckl)");
  // pretrain.py's options safe guard: the joint sequence fits 512 positions.
  need((t.conf_th == -1 ? t.max_bb : t.num_bb) + t.max_txt_len + 2 <= 512,
       "max_txt_len + (conf_th == -1 ? max_bb : num_bb) + 2 must be at most 512");

  // hps.json: vars(args), defaults included.
  nlohmann::json hps = j;
  hps["config"] = config_path;
  hps["compressed_db"] = t.compressed_db;
  hps["checkpoint"] = t.checkpoint;
  hps["output_dir"] = t.output_dir;
  hps["mrm_prob"] = t.mrm_prob;
  hps["itm_neg_prob"] = t.itm_neg_prob;
  hps["itm_ot_lambda"] = t.itm_ot_lambda;
  hps["max_txt_len"] = t.max_txt_len;
  hps["conf_th"] = t.conf_th;
  hps["max_bb"] = t.max_bb;
  hps["min_bb"] = t.min_bb;
  hps["num_bb"] = t.num_bb;
  hps["train_batch_size"] = t.train_batch_size;
  hps["val_batch_size"] = t.val_batch_size;
  hps["gradient_accumulation_steps"] = t.gradient_accumulation_steps;
  hps["learning_rate"] = t.learning_rate;
  hps["valid_steps"] = t.valid_steps;
  hps["num_train_steps"] = t.num_train_steps;
  hps["optim"] = t.optim;
  hps["betas"] = {t.beta1, t.beta2};
  hps["dropout"] = t.dropout;
  hps["weight_decay"] = t.weight_decay;
  hps["grad_norm"] = t.grad_norm;
  hps["warmup_steps"] = t.warmup_steps;
  hps["seed"] = t.seed;
  hps["fp16"] = t.fp16;
  hps["n_workers"] = t.n_workers;
  hps["pin_mem"] = t.pin_mem;
  hps["grad_reduce"] = t.grad_reduce;
  // Ours, written only when set: a caption run's hps.json stays pretrain.py's.
  if (t.vcr) hps["vcr"] = true;
  if (t.fix_uniter_quirks) hps["fix_uniter_quirks"] = true;
  t.hps_json = hps.dump(4);
  return t;
}

}  // namespace uniter::trainer
