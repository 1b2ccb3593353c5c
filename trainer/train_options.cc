// train-*.json parsing: defaults < config file < command line, every key
// checked against the task's list.
#include <nlohmann/json.hpp>


#include "common/error.h"
#include "trainer/internal/options.h"
#include "trainer/train.h"

namespace uniter::trainer {
namespace {

// train_*.py's keys beyond CommonTrainOptions'.
const OptionKinds& KeyKinds() {
  using K = OptionKind;
  static const OptionKinds kinds = WithCommonOptionKinds({
      {"train_txt_db", K::kStrOrList}, {"train_img_db", K::kStrOrList},
      {"train_txt_dbs", K::kStrOrList}, {"train_img_dbs", K::kStrOrList},
      {"val_txt_db", K::kStr}, {"val_img_db", K::kStr}, {"test_txt_db", K::kStr}, {"test_img_db", K::kStr},
      {"model", K::kStr}, {"use_img_type", K::kBool}, {"lr_mul", K::kDouble}, {"ans2label", K::kStr},
      // ITM
      {"negative_size", K::kInt}, {"hard_neg_size", K::kInt}, {"inf_minibatch_size", K::kInt},
      {"margin", K::kDouble}, {"full_val", K::kBool}, {"fix_uniter_quirks", K::kBool},
      // train_re.py / train_vcr.py
      {"mlp", K::kInt}, {"train_loss", K::kStr}, {"hard_ratio", K::kDouble}, {"decay", K::kStr},
      {"mask_dir", K::kStr}, {"checkpoint_from", K::kStr},
  });
  return kinds;
}

std::vector<std::string> StrList(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto& v = j.at(key);
  if (v.is_string()) return {v.get<std::string>()};
  return GetOption<std::vector<std::string>>(j, key, where);
}

}  // namespace

std::vector<std::string> TrainOptionKeys(TaskKind) { return OptionKeys(KeyKinds()); }

TrainOptions ParseTrainOptions(TaskKind task, const std::string& config_json, const std::string& config_path,
                               const std::vector<OptionOverride>& overrides) {
  const std::string where = config_path.empty() ? "command line" : config_path;
  const nlohmann::json j = MergeOptions(KeyKinds(), "train", config_json, where, overrides);

  TrainOptions t;
  ReadCommonOptions(j, where, &t);
  auto has = [&](const char* k) { return j.contains(k) && !j.at(k).is_null(); };
  auto read = [&](const char* k, auto* out) { ReadOption(j, k, where, out); };
  for (const char* k : {"train_txt_db", "train_txt_dbs"}) if (has(k)) t.train_txt_dbs = StrList(j, k, where);
  for (const char* k : {"train_img_db", "train_img_dbs"}) if (has(k)) t.train_img_dbs = StrList(j, k, where);
  read("val_txt_db", &t.val_txt_db);
  read("val_img_db", &t.val_img_db);
  read("test_txt_db", &t.test_txt_db);
  read("test_img_db", &t.test_img_db);
  read("model", &t.model);
  read("use_img_type", &t.use_img_type);
  read("lr_mul", &t.lr_mul);
  read("ans2label", &t.ans2label);
  read("negative_size", &t.negative_size);
  read("hard_neg_size", &t.hard_neg_size);
  read("inf_minibatch_size", &t.inf_minibatch_size);
  read("margin", &t.margin);
  read("full_val", &t.full_val);
  read("fix_uniter_quirks", &t.fix_uniter_quirks);
  read("mlp", &t.mlp);
  read("train_loss", &t.train_loss);
  read("hard_ratio", &t.hard_ratio);
  read("decay", &t.decay);
  read("mask_dir", &t.mask_dir);
  read("checkpoint_from", &t.checkpoint_from);

  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw UsageError(where + ": " + what);
  };
  need(!t.train_txt_dbs.empty() && t.train_txt_dbs.size() == t.train_img_dbs.size(),
       "train_txt_db and train_img_db are required (as many img dbs as txt dbs)");
  need(!t.val_txt_db.empty() && !t.val_img_db.empty(), "val_txt_db and val_img_db are required");
  need(t.test_txt_db.empty() == t.test_img_db.empty(), "test_txt_db and test_img_db go together");
  need(!t.model_config.empty(), "model_config is required");
  need(!t.output_dir.empty(), "output_dir is required");
  CheckCommonOptions(t, where);
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
  WriteCommonOptions(t, config_path, &hps);
  hps["model"] = t.model;
  hps["use_img_type"] = t.use_img_type;
  hps["lr_mul"] = t.lr_mul;
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
