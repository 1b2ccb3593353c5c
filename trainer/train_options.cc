// train-*.json parsing: defaults < config file < command line, every key
// checked against the task's list.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

#include "common/error.h"
#include "trainer/train.h"

namespace uniter::trainer {
namespace {

enum class Kind { kStr, kStrOrList, kInt, kDouble, kBool, kDoublePair };

const std::map<std::string, Kind>& KeyKinds() {
  static const std::map<std::string, Kind> kinds = {
      {"train_txt_db", Kind::kStrOrList}, {"train_img_db", Kind::kStrOrList},
      {"train_txt_dbs", Kind::kStrOrList}, {"train_img_dbs", Kind::kStrOrList},
      {"val_txt_db", Kind::kStr}, {"val_img_db", Kind::kStr},
      {"test_txt_db", Kind::kStr}, {"test_img_db", Kind::kStr},
      {"compressed_db", Kind::kBool}, {"model_config", Kind::kStr},
      {"checkpoint", Kind::kStr}, {"output_dir", Kind::kStr},
      {"model", Kind::kStr}, {"use_img_type", Kind::kBool},
      {"max_txt_len", Kind::kInt}, {"conf_th", Kind::kDouble},
      {"max_bb", Kind::kInt}, {"min_bb", Kind::kInt}, {"num_bb", Kind::kInt},
      {"train_batch_size", Kind::kInt}, {"val_batch_size", Kind::kInt},
      {"gradient_accumulation_steps", Kind::kInt}, {"learning_rate", Kind::kDouble},
      {"lr_mul", Kind::kDouble}, {"valid_steps", Kind::kInt},
      {"num_train_steps", Kind::kInt}, {"optim", Kind::kStr},
      {"betas", Kind::kDoublePair}, {"dropout", Kind::kDouble},
      {"weight_decay", Kind::kDouble}, {"grad_norm", Kind::kDouble},
      {"warmup_steps", Kind::kInt}, {"seed", Kind::kInt}, {"fp16", Kind::kBool},
      {"n_workers", Kind::kInt}, {"pin_mem", Kind::kBool}, {"config", Kind::kStr},
      {"ans2label", Kind::kStr}, {"grad_reduce", Kind::kStr}, {"device", Kind::kStr}, {"amp_dtype", Kind::kStr},
      // ITM
      {"negative_size", Kind::kInt}, {"hard_neg_size", Kind::kInt},
      {"inf_minibatch_size", Kind::kInt}, {"margin", Kind::kDouble},
      {"full_val", Kind::kBool}, {"fix_uniter_quirks", Kind::kBool},
      // train_re.py / train_vcr.py
      {"mlp", Kind::kInt}, {"train_loss", Kind::kStr},
      {"hard_ratio", Kind::kDouble}, {"decay", Kind::kStr}, {"mask_dir", Kind::kStr},
      {"checkpoint_from", Kind::kStr},
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
  if (o.values.empty()) {
    if (kind == Kind::kBool) return true;  // a bare --fp16
    throw UsageError(where + " needs a value");
  }
  auto scalar = [&](const std::string& v) -> nlohmann::json {
    if (kind == Kind::kStr || kind == Kind::kStrOrList) return v;
    if (kind == Kind::kBool) {
      std::string l = v;
      std::transform(l.begin(), l.end(), l.begin(), ::tolower);
      if (l == "true" || l == "1") return true;
      if (l == "false" || l == "0") return false;
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
  if (o.values.size() == 1 && kind != Kind::kDoublePair) return scalar(o.values[0]);
  if (kind != Kind::kStrOrList && kind != Kind::kDoublePair) throw UsageError(where + " takes one value");
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : o.values) list.push_back(kind == Kind::kDoublePair ? scalar(v) : nlohmann::json(v));
  return list;
}

template <typename T>
T Get(const nlohmann::json& j, const std::string& key, const std::string& where) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw FormatError("key '" + key + "' has the wrong type (" + j.at(key).type_name() + ")", where);
  }
}

std::vector<std::string> StrList(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto& v = j.at(key);
  if (v.is_string()) return {v.get<std::string>()};
  return Get<std::vector<std::string>>(j, key, where);
}

}  // namespace

std::vector<std::string> TrainOptionKeys(TaskKind) {
  std::vector<std::string> keys;
  for (const auto& [k, kind] : KeyKinds()) keys.push_back(k);
  return keys;
}

TrainOptions ParseTrainOptions(TaskKind task, const std::string& config_json, const std::string& config_path,
                               const std::vector<OptionOverride>& overrides) {
  const std::string where = config_path.empty() ? "command line" : config_path;
  nlohmann::json j = nlohmann::json::object();
  if (!config_json.empty()) {
    try {
      j = nlohmann::json::parse(config_json);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("not JSON: ") + e.what(), where);
    }
    if (!j.is_object()) throw FormatError("a train config must be a JSON object", where);
  }
  const auto& kinds = KeyKinds();
  auto check_key = [&](const std::string& key, const std::string& from) {
    if (!kinds.count(key))
      throw UsageError(from + ": unknown option '" + key + "' (valid: " + Join(TrainOptionKeys(task)) + ")");
  };
  for (const auto& [key, value] : j.items()) check_key(key, where);
  for (const auto& o : overrides) {
    std::string key = o.key;
    std::replace(key.begin(), key.end(), '-', '_');
    check_key(key, "command line");
    j[key] = FromCli({key, o.values}, kinds.at(key));
  }

  TrainOptions t;
  auto has = [&](const char* k) { return j.contains(k) && !j.at(k).is_null(); };
  auto str = [&](const char* k, std::string* out) { if (has(k)) *out = Get<std::string>(j, k, where); };
  auto num = [&](const char* k, auto* out) { if (has(k)) *out = Get<std::decay_t<decltype(*out)>>(j, k, where); };
  for (const char* k : {"train_txt_db", "train_txt_dbs"}) if (has(k)) t.train_txt_dbs = StrList(j, k, where);
  for (const char* k : {"train_img_db", "train_img_dbs"}) if (has(k)) t.train_img_dbs = StrList(j, k, where);
  str("val_txt_db", &t.val_txt_db);
  str("val_img_db", &t.val_img_db);
  str("test_txt_db", &t.test_txt_db);
  str("test_img_db", &t.test_img_db);
  num("compressed_db", &t.compressed_db);
  str("model_config", &t.model_config);
  str("checkpoint", &t.checkpoint);
  str("output_dir", &t.output_dir);
  str("model", &t.model);
  num("use_img_type", &t.use_img_type);
  num("max_txt_len", &t.max_txt_len);
  num("conf_th", &t.conf_th);
  num("max_bb", &t.max_bb);
  num("min_bb", &t.min_bb);
  num("num_bb", &t.num_bb);
  num("train_batch_size", &t.train_batch_size);
  num("val_batch_size", &t.val_batch_size);
  num("gradient_accumulation_steps", &t.gradient_accumulation_steps);
  num("learning_rate", &t.learning_rate);
  num("lr_mul", &t.lr_mul);
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
  str("ans2label", &t.ans2label);
  str("grad_reduce", &t.grad_reduce);
  str("device", &t.device);
  str("amp_dtype", &t.amp_dtype);
  num("negative_size", &t.negative_size);
  num("hard_neg_size", &t.hard_neg_size);
  num("inf_minibatch_size", &t.inf_minibatch_size);
  num("margin", &t.margin);
  num("full_val", &t.full_val);
  num("fix_uniter_quirks", &t.fix_uniter_quirks);
  num("mlp", &t.mlp);
  str("train_loss", &t.train_loss);
  num("hard_ratio", &t.hard_ratio);
  str("decay", &t.decay);
  str("mask_dir", &t.mask_dir);
  str("checkpoint_from", &t.checkpoint_from);

  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw UsageError(where + ": " + what);
  };
  need(!t.train_txt_dbs.empty() && t.train_txt_dbs.size() == t.train_img_dbs.size(),
       "train_txt_db and train_img_db are required (as many img dbs as txt dbs)");
  need(!t.val_txt_db.empty() && !t.val_img_db.empty(), "val_txt_db and val_img_db are required");
  need(t.test_txt_db.empty() == t.test_img_db.empty(), "test_txt_db and test_img_db go together");
  need(!t.model_config.empty(), "model_config is required");
  need(!t.output_dir.empty(), "output_dir is required");
  need(t.optim == "adamw", "optim '" + t.optim + "' is not supported (adamw)");
  need(t.train_batch_size > 0 && t.val_batch_size > 0, "train_batch_size and val_batch_size must be positive");
  need(t.gradient_accumulation_steps > 0, "gradient_accumulation_steps must be positive");
  need(t.valid_steps > 0 && t.num_train_steps > 0, "valid_steps and num_train_steps must be positive");
  need(t.dropout >= 0 && t.dropout < 1, "dropout must be in [0, 1)");
  need(t.grad_reduce == "mean" || t.grad_reduce == "sum", "grad_reduce '" + t.grad_reduce + "' is not mean or sum");
  need(t.n_workers >= 0, "n_workers must not be negative");
  need(t.amp_dtype.empty() || t.amp_dtype == "fp32" || t.amp_dtype == "fp16" || t.amp_dtype == "bf16",
       "amp_dtype '" + t.amp_dtype + "' is not fp32, fp16 or bf16");
  if (task == TaskKind::kItm) {
    need(!t.test_txt_db.empty(), "test_txt_db and test_img_db are required (train_itm.py evaluates on them)");
    need(t.negative_size > 0, "negative_size must be positive");
    need(t.hard_neg_size >= 0 && t.hard_neg_size <= t.negative_size, "hard_neg_size must be in [0, negative_size]");
    need(t.inf_minibatch_size >= 10, "inf_minibatch_size must be at least 10 (validation takes the top 10)");
  }
  if (task == TaskKind::kNlvr2)
    need(t.model == "paired" || t.model == "triplet" || t.model == "paired-attn",
         "model '" + t.model + "' is not paired, triplet or paired-attn");

  if (task == TaskKind::kRe) {
    need(t.mlp == 1 || t.mlp == 2, "mlp must be 1 or 2");
    need(t.train_loss == "cls" || t.train_loss == "rank", "train_loss '" + t.train_loss + "' is not cls or rank");
    need(t.hard_ratio >= 0 && t.hard_ratio <= 1, "hard_ratio must be in [0, 1]");
    need(t.decay == "linear", "decay '" + t.decay + "' is not supported (linear)");
  }
  if (task == TaskKind::kVcr)
    need(t.checkpoint_from == "pretrain" || t.checkpoint_from == "vcr_pretrain",
         "checkpoint_from '" + t.checkpoint_from + "' is not pretrain or vcr_pretrain");

  // hps.json: the run's options as UNITER dumps vars(args) (defaults included).
  nlohmann::json hps = j;
  hps["train_txt_db"] = t.train_txt_dbs.size() == 1 ? nlohmann::json(t.train_txt_dbs[0]) : nlohmann::json(t.train_txt_dbs);
  hps["train_img_db"] = t.train_img_dbs.size() == 1 ? nlohmann::json(t.train_img_dbs[0]) : nlohmann::json(t.train_img_dbs);
  hps.erase("train_txt_dbs");
  hps.erase("train_img_dbs");
  hps["config"] = config_path;
  hps["compressed_db"] = t.compressed_db;
  hps["checkpoint"] = t.checkpoint;
  hps["model"] = t.model;
  hps["use_img_type"] = t.use_img_type;
  hps["max_txt_len"] = t.max_txt_len;
  hps["conf_th"] = t.conf_th;
  hps["max_bb"] = t.max_bb;
  hps["min_bb"] = t.min_bb;
  hps["num_bb"] = t.num_bb;
  hps["train_batch_size"] = t.train_batch_size;
  hps["val_batch_size"] = t.val_batch_size;
  hps["gradient_accumulation_steps"] = t.gradient_accumulation_steps;
  hps["learning_rate"] = t.learning_rate;
  hps["lr_mul"] = t.lr_mul;
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
  if (task == TaskKind::kItm) {
    hps["negative_size"] = t.negative_size;
    if (t.hard_neg_size > 0) hps["hard_neg_size"] = t.hard_neg_size;
    hps["inf_minibatch_size"] = t.inf_minibatch_size;
    hps["margin"] = t.margin;
    hps["full_val"] = t.full_val;
    hps["fix_uniter_quirks"] = t.fix_uniter_quirks;
  }
  if (task == TaskKind::kRe) {
    hps["mlp"] = t.mlp;
    hps["train_loss"] = t.train_loss;
    hps["margin"] = t.margin;
    hps["hard_ratio"] = t.hard_ratio;
    hps["decay"] = t.decay;
  }
  if (task == TaskKind::kVcr) hps["checkpoint_from"] = t.checkpoint_from;
  t.hps_json = hps.dump(4);
  return t;
}

std::vector<OptionOverride> ParseOptionOverrides(const std::vector<std::string>& args) {
  std::vector<OptionOverride> out;
  for (const std::string& a : args) {
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      const size_t eq = a.find('=');
      out.push_back({a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2), {}});
      if (eq != std::string::npos) out.back().values.push_back(a.substr(eq + 1));
    } else if (out.empty()) {
      throw UsageError("unexpected argument '" + a + "' (options are --key value)");
    } else {
      out.back().values.push_back(a);
    }
  }
  return out;
}

void SetDumpBatches(const std::vector<std::string>& n_and_dir, RunOptions* run) {
  const std::string& n = n_and_dir.at(0);
  size_t used = 0;
  try {
    run->dump_batches = std::stoll(n, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != n.size() || run->dump_batches < 0)
    throw UsageError("--dump-batches N DIR: N must be a count >= 0, got '" + n + "'");
  run->dump_batches_dir = n_and_dir.at(1);
}

}  // namespace uniter::trainer
