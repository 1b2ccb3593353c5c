// pretrain-*.json parsing: defaults < config file < command line, every key
// checked against pretrain.py's argparse list.
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "trainer/internal/options.h"
#include "trainer/pretrain.h"
#include "trainer/pretrain_task.h"

namespace uniter::trainer {
namespace {

// pretrain.py's keys beyond CommonTrainOptions'.
const OptionKinds& KeyKinds() {
  using K = OptionKind;
  static const OptionKinds kinds = WithCommonOptionKinds({
      {"train_datasets", K::kDatasets}, {"val_datasets", K::kDatasets},
      {"mrm_prob", K::kDouble}, {"itm_neg_prob", K::kDouble}, {"itm_ot_lambda", K::kDouble},
      {"vcr", K::kBool}, {"fix_uniter_quirks", K::kBool},
      // pretrain.py sets opts.rank itself; configs saved from a run's hps.json
      // (pretrain-vcr-*.json) carry it. Accepted, ignored.
      {"rank", K::kInt},
  });
  return kinds;
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
    s.name = GetOption<std::string>(d, "name", at);
    s.db = GetOption<std::vector<std::string>>(d, "db", at);
    s.img = GetOption<std::vector<std::string>>(d, "img", at);
    s.tasks = GetOption<std::vector<std::string>>(d, "tasks", at);
    if (train) s.mix_ratio = GetOption<std::vector<int>>(d, "mix_ratio", at);
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

std::vector<std::string> PretrainOptionKeys() { return OptionKeys(KeyKinds()); }

PretrainOptions ParsePretrainOptions(const std::string& config_json, const std::string& config_path,
                                     const std::vector<OptionOverride>& overrides, bool for_training) {
  const std::string where = config_path.empty() ? "command line" : config_path;
  const nlohmann::json j = MergeOptions(KeyKinds(), "pretrain", config_json, where, overrides);

  PretrainOptions t;
  auto has = [&](const char* k) { return j.contains(k) && !j.at(k).is_null(); };
  if (has("train_datasets")) t.train_datasets = ParseDatasets(j.at("train_datasets"), "train_datasets", where, true);
  if (has("val_datasets")) t.val_datasets = ParseDatasets(j.at("val_datasets"), "val_datasets", where, false);
  ReadCommonOptions(j, where, &t);
  auto read = [&](const char* k, auto* out) { ReadOption(j, k, where, out); };
  read("mrm_prob", &t.mrm_prob);
  read("itm_neg_prob", &t.itm_neg_prob);
  read("itm_ot_lambda", &t.itm_ot_lambda);
  read("vcr", &t.vcr);
  read("fix_uniter_quirks", &t.fix_uniter_quirks);

  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw UsageError(where + ": " + what);
  };
  if (for_training) {
    need(!t.train_datasets.empty(), "train_datasets is required");
    need(!t.output_dir.empty(), "output_dir is required");
  }
  need(!t.val_datasets.empty(), "val_datasets is required");
  need(!t.model_config.empty(), "model_config is required");
  CheckCommonOptions(t, where);
  need(t.mrm_prob >= 0 && t.mrm_prob <= 1 && t.itm_neg_prob >= 0 && t.itm_neg_prob <= 1,
       "mrm_prob and itm_neg_prob must be in [0, 1]");
  need(t.itm_ot_lambda >= 0, "itm_ot_lambda must not be negative");
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
  WriteCommonOptions(t, config_path, &hps);
  hps["mrm_prob"] = t.mrm_prob;
  hps["itm_neg_prob"] = t.itm_neg_prob;
  hps["itm_ot_lambda"] = t.itm_ot_lambda;
  // Ours, written only when set: a caption run's hps.json stays pretrain.py's.
  if (t.vcr) hps["vcr"] = true;
  if (t.fix_uniter_quirks) hps["fix_uniter_quirks"] = true;
  t.hps_json = hps.dump(4);
  return t;
}

}  // namespace uniter::trainer
