// The config parsing uniter train and uniter pretrain share (internal/options.h).
#include "trainer/internal/options.h"

#include <algorithm>

namespace uniter::trainer {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// A command-line value as the key's JSON type.
nlohmann::json FromCli(const OptionOverride& o, OptionKind kind) {
  const std::string where = "--" + o.key;
  if (kind == OptionKind::kDatasets) throw UsageError(where + ": datasets are set in the config file only");
  if (o.values.empty()) {
    if (kind == OptionKind::kBool) return true;  // a bare --fp16
    throw UsageError(where + " needs a value");
  }
  auto scalar = [&](const std::string& v) -> nlohmann::json {
    if (kind == OptionKind::kStr || kind == OptionKind::kStrOrList) return v;
    if (kind == OptionKind::kBool) {
      std::string l = v;
      std::transform(l.begin(), l.end(), l.begin(), ::tolower);
      if (l == "true" || l == "1") return true;
      if (l == "false" || l == "0") return false;
      throw UsageError(where + ": '" + v + "' is not true or false");
    }
    try {
      size_t used = 0;
      if (kind == OptionKind::kInt) {
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
  if (o.values.size() == 1 && kind != OptionKind::kDoublePair) return scalar(o.values[0]);
  if (kind != OptionKind::kStrOrList && kind != OptionKind::kDoublePair) throw UsageError(where + " takes one value");
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : o.values) list.push_back(scalar(v));
  return list;
}

}  // namespace

OptionKinds WithCommonOptionKinds(OptionKinds own) {
  using K = OptionKind;
  own.insert({
      {"compressed_db", K::kBool}, {"model_config", K::kStr}, {"checkpoint", K::kStr}, {"output_dir", K::kStr},
      {"max_txt_len", K::kInt}, {"conf_th", K::kDouble}, {"max_bb", K::kInt}, {"min_bb", K::kInt},
      {"num_bb", K::kInt}, {"train_batch_size", K::kInt}, {"val_batch_size", K::kInt},
      {"gradient_accumulation_steps", K::kInt}, {"learning_rate", K::kDouble}, {"valid_steps", K::kInt},
      {"num_train_steps", K::kInt}, {"optim", K::kStr}, {"betas", K::kDoublePair}, {"dropout", K::kDouble},
      {"weight_decay", K::kDouble}, {"grad_norm", K::kDouble}, {"warmup_steps", K::kInt}, {"seed", K::kInt},
      {"fp16", K::kBool}, {"n_workers", K::kInt}, {"pin_mem", K::kBool}, {"config", K::kStr},
      {"device", K::kStr}, {"amp_dtype", K::kStr}, {"grad_reduce", K::kStr},
  });
  return own;
}

std::vector<std::string> OptionKeys(const OptionKinds& kinds) {
  std::vector<std::string> keys;
  for (const auto& [k, kind] : kinds) keys.push_back(k);
  return keys;
}

nlohmann::json MergeOptions(const OptionKinds& kinds, const std::string& what, const std::string& config_json,
                            const std::string& where, const std::vector<OptionOverride>& overrides) {
  nlohmann::json j = nlohmann::json::object();
  if (!config_json.empty()) {
    try {
      j = nlohmann::json::parse(config_json);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("not JSON: ") + e.what(), where);
    }
    if (!j.is_object()) throw FormatError("a " + what + " config must be a JSON object", where);
  }
  auto check_key = [&](const std::string& key, const std::string& from) {
    if (!kinds.count(key))
      throw UsageError(from + ": unknown option '" + key + "' (valid: " + Join(OptionKeys(kinds)) + ")");
  };
  for (const auto& [key, value] : j.items()) check_key(key, where);
  for (const auto& o : overrides) {
    std::string key = o.key;
    std::replace(key.begin(), key.end(), '-', '_');
    check_key(key, "command line");
    j[key] = FromCli({key, o.values}, kinds.at(key));
  }
  return j;
}

void ReadCommonOptions(const nlohmann::json& j, const std::string& where, CommonTrainOptions* o) {
  auto read = [&](const char* key, auto* out) { ReadOption(j, key, where, out); };
  read("compressed_db", &o->compressed_db);
  read("model_config", &o->model_config);
  read("checkpoint", &o->checkpoint);
  read("output_dir", &o->output_dir);
  read("max_txt_len", &o->max_txt_len);
  read("conf_th", &o->conf_th);
  read("max_bb", &o->max_bb);
  read("min_bb", &o->min_bb);
  read("num_bb", &o->num_bb);
  read("train_batch_size", &o->train_batch_size);
  read("val_batch_size", &o->val_batch_size);
  read("gradient_accumulation_steps", &o->gradient_accumulation_steps);
  read("learning_rate", &o->learning_rate);
  read("valid_steps", &o->valid_steps);
  read("num_train_steps", &o->num_train_steps);
  read("optim", &o->optim);
  if (j.contains("betas") && !j.at("betas").is_null()) {
    const auto betas = GetOption<std::vector<double>>(j, "betas", where);
    if (betas.size() != 2) throw FormatError("key 'betas' needs two numbers", where);
    o->beta1 = betas[0];
    o->beta2 = betas[1];
  }
  read("dropout", &o->dropout);
  read("weight_decay", &o->weight_decay);
  read("grad_norm", &o->grad_norm);
  read("warmup_steps", &o->warmup_steps);
  read("seed", &o->seed);
  read("fp16", &o->fp16);
  read("n_workers", &o->n_workers);
  read("pin_mem", &o->pin_mem);
  read("device", &o->device);
  read("amp_dtype", &o->amp_dtype);
  read("grad_reduce", &o->grad_reduce);
}

void CheckCommonOptions(const CommonTrainOptions& o, const std::string& where) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw UsageError(where + ": " + what);
  };
  need(o.optim == "adamw", "optim '" + o.optim + "' is not supported (adamw)");
  need(o.train_batch_size > 0 && o.val_batch_size > 0, "train_batch_size and val_batch_size must be positive");
  need(o.gradient_accumulation_steps > 0, "gradient_accumulation_steps must be positive");
  need(o.valid_steps > 0 && o.num_train_steps > 0, "valid_steps and num_train_steps must be positive");
  need(o.dropout >= 0 && o.dropout < 1, "dropout must be in [0, 1)");
  need(o.grad_reduce == "mean" || o.grad_reduce == "sum", "grad_reduce '" + o.grad_reduce + "' is not mean or sum");
  need(o.n_workers >= 0, "n_workers must not be negative");
  need(o.amp_dtype.empty() || o.amp_dtype == "fp32" || o.amp_dtype == "fp16" || o.amp_dtype == "bf16",
       "amp_dtype '" + o.amp_dtype + "' is not fp32, fp16 or bf16");
}

void WriteCommonOptions(const CommonTrainOptions& o, const std::string& config_path, nlohmann::json* hps) {
  nlohmann::json& h = *hps;
  h["config"] = config_path;
  h["compressed_db"] = o.compressed_db;
  h["checkpoint"] = o.checkpoint;
  h["output_dir"] = o.output_dir;
  h["max_txt_len"] = o.max_txt_len;
  h["conf_th"] = o.conf_th;
  h["max_bb"] = o.max_bb;
  h["min_bb"] = o.min_bb;
  h["num_bb"] = o.num_bb;
  h["train_batch_size"] = o.train_batch_size;
  h["val_batch_size"] = o.val_batch_size;
  h["gradient_accumulation_steps"] = o.gradient_accumulation_steps;
  h["learning_rate"] = o.learning_rate;
  h["valid_steps"] = o.valid_steps;
  h["num_train_steps"] = o.num_train_steps;
  h["optim"] = o.optim;
  h["betas"] = {o.beta1, o.beta2};
  h["dropout"] = o.dropout;
  h["weight_decay"] = o.weight_decay;
  h["grad_norm"] = o.grad_norm;
  h["warmup_steps"] = o.warmup_steps;
  h["seed"] = o.seed;
  h["fp16"] = o.fp16;
  h["n_workers"] = o.n_workers;
  h["pin_mem"] = o.pin_mem;
  h["grad_reduce"] = o.grad_reduce;
}

}  // namespace uniter::trainer
