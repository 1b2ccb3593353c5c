#include "trainer/data/datasets.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <cstring>
#include <algorithm>

#include "common/error.h"
#include "featdb/example.h"
#include "featdb/array.h"
#include "featdb/img_db.h"
#include "featdb/txt_db.h"
#include "trainer/data/token_bucket_sampler.h"

namespace uniter::trainer::data {

Task TaskForModel(TaskKind task, const std::string& nlvr2_model) {
  switch (task) {
    case TaskKind::kNlvr2: return nlvr2_model == "triplet" ? Task::kNlvr2Triplet : Task::kNlvr2Paired;
    case TaskKind::kVqa: return Task::kVqa;
    case TaskKind::kVe: return Task::kVe;
    case TaskKind::kItm: return Task::kVqa;  // one image per row, no type ids, no targets
    case TaskKind::kRe:
    case TaskKind::kVcr: break;  // their own datasets (trainer/data/internal/re_vcr.h)
  }
  throw UsageError("unknown task");
}

namespace fs = std::filesystem;
namespace {

// JSON with its key order kept: UNITER iterates id2len.json's keys in file order.
nlohmann::ordered_json ReadOrderedJson(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError("missing " + what, path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::ordered_json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(what + " does not parse: " + e.what(), path);
  }
}

void RequireDir(const std::string& dir, const std::string& what) {
  if (!fs::is_directory(dir)) throw IoError(what + " not found (no such folder)", dir);
}

std::string Key(const std::string& dir, const std::string& key) { return dir + "[" + key + "]"; }

}  // namespace

// ------------------------------------------------------------------ TxtTokDb

TxtTokDb::TxtTokDb(const std::string& dir, int max_txt_len) : dir_(dir) {
  RequireDir(dir, "txt_db");
  db_ = std::make_unique<featdb::TxtDbReader>(dir);
  const auto id2len = ReadOrderedJson(dir + "/id2len.json", "id2len.json");
  const auto meta = ReadOrderedJson(dir + "/meta.json", "meta.json");
  try {
    for (auto it = id2len.begin(); it != id2len.end(); ++it) {
      const int64_t len = it.value().get<int64_t>();
      if (max_txt_len >= 0 && len > max_txt_len) continue;
      ids_.push_back(it.key());
      txt_lens_.push_back(len);
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("id2len.json: lengths must be ints: ") + e.what(), dir + "/id2len.json");
  }
  try {
    cls_ = meta.at("CLS").get<int64_t>();
    sep_ = meta.at("SEP").get<int64_t>();
    mask_ = meta.at("MASK").get<int64_t>();
    v_range_ = meta.at("v_range").get<std::vector<int64_t>>();
    if (meta.contains("bert") && meta["bert"].is_string()) tokenizer_ = meta["bert"].get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("meta.json needs int CLS, SEP, MASK and v_range: ") + e.what(), dir + "/meta.json");
  }
}

TxtTokDb::~TxtTokDb() = default;

TextExample TxtTokDb::Get(const std::string& id) const {
  const auto value = db_->Get(id);
  if (!value) throw FormatError("example '" + id + "' is not in the txt_db", dir_);
  TextExample out;
  try {
    for (int32_t t : featdb::InputIds(*value)) out.input_ids.push_back(t);
    if (value->Find("img_fname")) out.img_fnames = featdb::ImgFnames(*value);
    if (const featdb::Value* t = value->Find("target"); t && !t->is_nil()) {
      if (t->type() == featdb::Value::Type::kMap) {
        const featdb::SoftTarget soft = featdb::SoftTargetField(*value);
        out.has_soft_target = true;
        out.labels.assign(soft.labels.begin(), soft.labels.end());
        out.scores = soft.scores;
      } else {
        out.target = featdb::IntField(*value, "target");
      }
    }
  } catch (const Error& e) {
    throw FormatError(e.message(), Key(dir_, id));
  }
  return out;
}

std::map<std::string, std::vector<std::string>> TxtTokDb::Txt2Img() const {
  const auto j = ReadOrderedJson(dir_ + "/txt2img.json", "txt2img.json");
  std::map<std::string, std::vector<std::string>> out;
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_string())
        out[it.key()] = {it.value().get<std::string>()};
      else
        out[it.key()] = it.value().get<std::vector<std::string>>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("txt2img.json: values must be names or lists of names: ") + e.what(),
                      dir_ + "/txt2img.json");
  }
  return out;
}

void CheckSameTokenizer(const std::vector<const TxtTokDb*>& dbs) {
  for (const TxtTokDb* db : dbs) {
    if (db->tokenizer().empty()) throw FormatError("meta.json has no 'bert' tokenizer name", db->dir() + "/meta.json");
    if (db->tokenizer() != dbs.front()->tokenizer())
      throw FormatError("tokenizer '" + db->tokenizer() + "' differs from '" + dbs.front()->tokenizer() + "' of " +
                            dbs.front()->dir(),
                        db->dir() + "/meta.json");
  }
}

// ----------------------------------------------------------------- ImgFeatDb

ImgFeatDb::ImgFeatDb(const std::string& img_dir, const ImgDbOptions& options) : dir_(img_dir), options_(options) {
  RequireDir(img_dir, "img_db");
  featdb::ImgDbOptions o;
  o.conf_th = options.conf_th;
  o.max_bb = options.max_bb;
  o.min_bb = options.min_bb;
  o.num_bb = options.num_bb;
  o.codec = options.compressed_db ? featdb::Codec::kNpz : featdb::Codec::kMsgpack;
  std::string name = featdb::ImgDbName(o);
  if (!options.compressed_db && !fs::is_directory(img_dir + "/" + name)) {
    featdb::ImgDbOptions native = o;
    native.codec = featdb::Codec::kNative;
    if (fs::is_directory(img_dir + "/" + featdb::ImgDbName(native))) name = featdb::ImgDbName(native);
  }
  db_path_ = img_dir + "/" + name;
  if (!fs::is_directory(db_path_))
    throw IoError("img_db has no feature db '" + name + "' for conf_th/max_bb/min_bb/num_bb/compressed_db", img_dir);
  const std::string json = featdb::NbbJsonName(o);
  if (!json.empty()) {
    // UNITER's fallback without the json crashes (self.conf_th unset), so the json is required.
    const auto j = ReadOrderedJson(img_dir + "/" + json, "nbb sidecar " + json);
    try {
      for (auto it = j.begin(); it != j.end(); ++it) name2nbb_[it.key()] = it.value().get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("nbb sidecar values must be ints: ") + e.what(), img_dir + "/" + json);
    }
  }
  db_ = std::make_unique<featdb::ImgDbReader>(db_path_);
}

ImgFeatDb::~ImgFeatDb() = default;

int64_t ImgFeatDb::Nbb(const std::string& fname) const {
  if (options_.conf_th == -1) return options_.num_bb;
  auto it = name2nbb_.find(fname);
  if (it == name2nbb_.end()) throw FormatError("image '" + fname + "' is not in the nbb sidecar", dir_);
  return it->second;
}

void ImageFeat::CopyFeatures(float* out) const {
  const size_t n = static_cast<size_t>(nbb * feat_dim);
  if (feat_is_f16)
    featdb::HalfToFloatN(reinterpret_cast<const uint16_t*>(feat_bytes.data()), out, n);
  else
    std::memcpy(out, feat_bytes.data(), n * sizeof(float));
}

ImageFeat ImgFeatDb::Get(const std::string& fname, bool soft_labels) const {
  const int64_t nbb = Nbb(fname);
  std::vector<std::string> wanted = {"features", "norm_bb"};
  if (soft_labels) wanted.push_back("soft_labels");
  auto arrays = db_->Get(fname, wanted);
  if (!arrays) throw FormatError("image '" + fname + "' is not in the img_db", db_path_);
  featdb::Array* f = nullptr;
  const featdb::Array* b = nullptr;
  const featdb::Array* labels = nullptr;
  for (featdb::Array& a : *arrays) {
    if (a.name == "features") f = &a;
    if (a.name == "norm_bb") b = &a;
    if (a.name == "soft_labels") labels = &a;
  }
  if (!f || !b || f->shape.size() != 2 || b->shape.size() != 2 || b->shape[1] != 6 || f->shape[0] != b->shape[0])
    throw FormatError("image '" + fname + "' needs 2-d features and norm_bb [N, 6] with equal N", db_path_);
  ImageFeat out;
  // features[:nbb]: fewer stored rows than the json says yield what is stored.
  out.nbb = std::min(nbb, f->shape[0]);
  out.feat_dim = f->shape[1];
  if (f->dtype == featdb::DType::kFloat16 || f->dtype == featdb::DType::kFloat32) {
    out.feat_is_f16 = f->dtype == featdb::DType::kFloat16;
    out.feat_bytes = std::move(f->data);
  } else {
    const std::vector<float> v = f->ToFloat32();
    out.feat_is_f16 = false;
    out.feat_bytes.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  const std::vector<float> bb = featdb::TruncateRows(*b, out.nbb).ToFloat32();
  out.pos.resize(static_cast<size_t>(out.nbb) * 7);
  for (int64_t r = 0; r < out.nbb; ++r) {
    const float* src = bb.data() + r * 6;
    float* p = out.pos.data() + r * 7;
    for (int c = 0; c < 6; ++c) p[c] = src[c];
    p[6] = src[4] * src[5];  // w·h in float32, as torch multiplies the float tensors
  }
  if (soft_labels) {
    if (!labels || labels->shape.size() != 2 || labels->shape[0] != f->shape[0])
      throw FormatError("image '" + fname + "' needs soft_labels [N, classes] beside its N features (MRC)", db_path_);
    out.label_dim = labels->shape[1];
    out.soft_labels = featdb::TruncateRows(*labels, out.nbb).ToFloat32();
  }
  return out;
}

// --------------------------------------------------------------- TaskDataset

const char* TaskName(Task t) {
  switch (t) {
    case Task::kNlvr2Paired: return "nlvr2-paired";
    case Task::kNlvr2Triplet: return "nlvr2-triplet";
    case Task::kVqa: return "vqa";
    case Task::kVe: return "ve";
  }
  return "?";
}

namespace {
bool IsNlvr2(Task t) { return t == Task::kNlvr2Paired || t == Task::kNlvr2Triplet; }
}  // namespace

TaskDataset::TaskDataset(std::vector<DbPair> dbs, const DatasetOptions& options)
    : dbs_(std::move(dbs)), options_(options) {
  num_answers_ = options.num_answers > 0 ? options.num_answers : (options.task == Task::kVe ? 3 : 3129);
  const size_t want_imgs = IsNlvr2(options.task) ? 2 : 1;
  for (size_t d = 0; d < dbs_.size(); ++d) {
    const TxtTokDb& txt = *dbs_[d].txt;
    const ImgFeatDb& img = *dbs_[d].img;
    const auto txt2img = txt.Txt2Img();
    const auto shard = ShardIndices(static_cast<int64_t>(txt.ids().size()), options.rank, options.world);
    for (int64_t j : shard) {
      const std::string& id = txt.ids()[j];
      const int64_t tl = txt.txt_lens()[j];
      auto it = txt2img.find(id);
      if (it == txt2img.end()) throw FormatError("example '" + id + "' is not in txt2img.json", txt.dir());
      if (it->second.size() != want_imgs)
        throw FormatError("example '" + id + "' has " + std::to_string(it->second.size()) + " images in txt2img.json, " +
                              TaskName(options.task) + " needs " + std::to_string(want_imgs),
                          txt.dir());
      int64_t nbb_sum = 0;
      for (const std::string& f : it->second) nbb_sum += img.Nbb(f);
      ids_.push_back(id);
      db_of_.push_back(static_cast<int>(d));
      lens_.push_back((options.task == Task::kNlvr2Paired ? 2 * tl : tl) + nbb_sum);
    }
  }
}

Example TaskDataset::Get(int64_t i) const {
  const DbPair& db = dbs_[db_of_.at(i)];
  Example out;
  out.id = ids_[i];
  TextExample t = db.txt->Get(out.id);
  const size_t want_imgs = IsNlvr2(options_.task) ? 2 : 1;
  if (t.img_fnames.size() != want_imgs)
    throw FormatError("example needs " + std::to_string(want_imgs) + " img_fname, has " +
                          std::to_string(t.img_fnames.size()),
                      db.txt->dir() + "[" + out.id + "]");
  out.input_ids.reserve(t.input_ids.size() + 2);
  out.input_ids.push_back(db.txt->cls());
  out.input_ids.insert(out.input_ids.end(), t.input_ids.begin(), t.input_ids.end());
  out.input_ids.push_back(db.txt->sep());
  for (const std::string& f : t.img_fnames) out.images.push_back(db.img->Get(f));
  out.target = t.target;
  out.has_soft_target = t.has_soft_target;
  out.labels = std::move(t.labels);
  out.scores = std::move(t.scores);
  return out;
}

}  // namespace uniter::trainer::data
