// What uniter train's and uniter pretrain's config parsers share: the key
// kinds, reading a config file with its command-line overrides, and the
// options both UNITER's train_*.py and pretrain.py accept (CommonTrainOptions)
// read, checked and written to hps.json once.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "trainer/train.h"

namespace uniter::trainer {

// A key's JSON type. kStrOrList: a string or a list of them (train_txt_db);
// kDoublePair: `betas`; kDatasets: pretrain's dataset lists (file only).
enum class OptionKind { kStr, kStrOrList, kInt, kDouble, kBool, kDoublePair, kDatasets };
using OptionKinds = std::map<std::string, OptionKind>;

// `own` plus the keys of CommonTrainOptions (and `config`).
OptionKinds WithCommonOptionKinds(OptionKinds own);

// The keys of `kinds`, sorted.
std::vector<std::string> OptionKeys(const OptionKinds& kinds);

// `config_json` (a `what` config's text, "" for none, read from `where`) with
// `overrides` applied ('-' in a key reads as '_'), each value as its key's
// kind. A key not in `kinds` throws UsageError listing the valid ones.
nlohmann::json MergeOptions(const OptionKinds& kinds, const std::string& what, const std::string& config_json,
                            const std::string& where, const std::vector<OptionOverride>& overrides);

// j[key] as T; FormatError naming `where` and the key when missing or of another type.
template <typename T>
T GetOption(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.contains(key)) throw FormatError("key '" + key + "' is missing", where);
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw FormatError("key '" + key + "' has the wrong type (" + j.at(key).type_name() + ")", where);
  }
}

// Sets `*out` from j[key] when j holds it (null counts as absent).
template <typename T>
void ReadOption(const nlohmann::json& j, const char* key, const std::string& where, T* out) {
  if (j.contains(key) && !j.at(key).is_null()) *out = GetOption<T>(j, key, where);
}

// The CommonTrainOptions keys `j` holds, into `o`.
void ReadCommonOptions(const nlohmann::json& j, const std::string& where, CommonTrainOptions* o);

// The checks on CommonTrainOptions both scripts need (optim, sizes, steps,
// dropout, grad_reduce, n_workers, amp_dtype): UsageError "`where`: ...".
void CheckCommonOptions(const CommonTrainOptions& o, const std::string& where);

// Into `hps` (vars(args) as UNITER's save_training_meta dumps it): `config`
// and every CommonTrainOptions key but model_config, device and amp_dtype
// (those stay as given, when given).
void WriteCommonOptions(const CommonTrainOptions& o, const std::string& config_path, nlohmann::json* hps);

}  // namespace uniter::trainer
