#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "featdb/example.h"
#include "featdb/txt_db.h"
#include "featdb/value.h"
#include "trainer/data/internal/re_vcr.h"

namespace uniter::trainer::data {
namespace {

namespace fs = std::filesystem;

nlohmann::ordered_json ReadSidecar(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  if (!fs::is_regular_file(path)) throw FormatError("missing " + name, path);
  try {
    // Straight from the file: a json → ordered_json round trip would sort the
    // keys, and UNITER keeps the file's order (id2len: the ids, their shards).
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError("cannot open", path);
    return nlohmann::ordered_json::parse(in);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw FormatError(name + " does not parse: " + e.what(), path);
  }
}

void ReadMeta(const std::string& dir, int64_t* cls, int64_t* sep) {
  const auto meta = ReadSidecar(dir, "meta.json");
  try {
    *cls = meta.at("CLS").get<int64_t>();
    *sep = meta.at("SEP").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("meta.json needs int CLS and SEP: ") + e.what(), dir + "/meta.json");
  }
}

std::vector<int64_t> Ids64(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }

std::vector<int64_t> Wrap(int64_t cls, const std::vector<int64_t>& ids, int64_t sep) {
  std::vector<int64_t> out{cls};
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(sep);
  return out;
}

}  // namespace

Batch CollateRows(const std::vector<RowSpec>& rows) {
  if (rows.empty()) throw UsageError("CollateRows: empty batch");
  const int64_t bs = static_cast<int64_t>(rows.size());
  int64_t max_tl = 0, max_nbb = 0, out_size = 0, feat_dim = 0;
  bool typed = false;
  std::vector<int64_t> nbbs;
  for (const RowSpec& r : rows) {
    int64_t nbb = 0;
    for (const ImageFeat* im : r.images) {
      nbb += im->nbb;
      if (im->nbb > 0) {
        if (feat_dim != 0 && im->feat_dim != feat_dim) throw FormatError("images of one batch differ in feature size", "batch");
        feat_dim = im->feat_dim;
      }
    }
    const int64_t tl = static_cast<int64_t>(r.input_ids.size());
    nbbs.push_back(nbb);
    max_tl = std::max(max_tl, tl);
    max_nbb = std::max(max_nbb, nbb);
    out_size = std::max(out_size, tl + nbb);
    typed = typed || !r.txt_type_ids.empty();
  }
  Batch b;
  b.input_ids = at::zeros({bs, max_tl}, at::kLong);
  b.position_ids = at::arange(max_tl, at::kLong).unsqueeze(0);
  if (typed) b.txt_type_ids = at::zeros({bs, max_tl}, at::kLong);
  b.img_feat = at::zeros({bs, max_nbb, feat_dim}, at::kFloat);
  b.img_pos_feat = at::zeros({bs, max_nbb, 7}, at::kFloat);
  b.attn_masks = at::zeros({bs, out_size}, at::kLong);
  b.gather_index = at::arange(out_size, at::kLong).unsqueeze(0).repeat({bs, 1});
  b.obj_masks = at::ones({bs, max_nbb}, at::kBool);
  int64_t* ids = b.input_ids.data_ptr<int64_t>();
  int64_t* types = typed ? b.txt_type_ids.data_ptr<int64_t>() : nullptr;
  float* feat = b.img_feat.data_ptr<float>();
  float* pos = b.img_pos_feat.data_ptr<float>();
  int64_t* mask = b.attn_masks.data_ptr<int64_t>();
  int64_t* gi = b.gather_index.data_ptr<int64_t>();
  bool* obj = b.obj_masks.data_ptr<bool>();
  for (int64_t i = 0; i < bs; ++i) {
    const RowSpec& r = rows[i];
    const int64_t tl = static_cast<int64_t>(r.input_ids.size());
    std::copy(r.input_ids.begin(), r.input_ids.end(), ids + i * max_tl);
    if (types) std::copy(r.txt_type_ids.begin(), r.txt_type_ids.end(), types + i * max_tl);
    int64_t at_row = 0;
    for (const ImageFeat* im : r.images) {
      if (im->nbb == 0) continue;
      im->CopyFeatures(feat + (i * max_nbb + at_row) * feat_dim);
      std::memcpy(pos + (i * max_nbb + at_row) * 7, im->pos.data(), im->nbb * 7 * sizeof(float));
      at_row += im->nbb;
    }
    std::fill(obj + i * max_nbb, obj + i * max_nbb + nbbs[i], false);
    std::fill(mask + i * out_size, mask + i * out_size + tl + nbbs[i], 1);
    for (int64_t k = 0; k < nbbs[i]; ++k) gi[i * out_size + tl + k] = max_tl + k;
    b.txt_lens.push_back(tl);
    b.num_bbs.push_back(nbbs[i]);
    b.num_tokens += tl + nbbs[i];
  }
  return b;
}

// ---------------------------------------------------------------------- RE

ReTxtDb::ReTxtDb(const std::string& dir, int max_txt_len) : dir_(dir), max_txt_len_(max_txt_len) {
  if (!fs::is_directory(dir)) throw IoError("txt_db not found (no such folder)", dir);
  db_ = std::make_unique<featdb::TxtDbReader>(dir);
  ReadMeta(dir, &cls_, &sep_);
  std::string file = "refs.json";
  try {
    for (const auto& ref : ReadSidecar(dir, file)) {
      const int64_t ref_id = ref.at("ref_id").get<int64_t>();
      ref_ids_.push_back(ref_id);
      ref_sents_[ref_id] = ref.at("sent_ids").get<std::vector<int64_t>>();
    }
    file = "images.json";
    for (const auto& im : ReadSidecar(dir, file)) {
      ReImage r{im.at("width").get<int64_t>(), im.at("height").get<int64_t>(),
                im.at("ann_ids").get<std::vector<int64_t>>()};
      images_[im.at("id").get<int64_t>()] = std::move(r);
    }
    file = "id2len.json";
    const auto id2len = ReadSidecar(dir, file);  // kept: items() of a temporary would dangle
    for (const auto& [id, len] : id2len.items()) {
      const int64_t l = len.get<int64_t>();
      if (max_txt_len < 0 || l <= max_txt_len) id2len_[id] = l;
    }
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(file + ": " + e.what(), dir + "/" + file);
  }
}

ReTxtDb::~ReTxtDb() = default;

void ReTxtDb::SetRefOrder(std::vector<int64_t> order, const std::string& where) {
  std::vector<int64_t> a = order, b = ref_ids_;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a != b) throw FormatError("the saved ref order does not reorder " + dir() + "'s refs", where);
  ref_ids_ = std::move(order);
}

std::vector<std::string> ReTxtDb::SentIds() const {
  std::vector<std::string> out;
  for (int64_t ref : ref_ids_) {
    for (int64_t sent : ref_sents_.at(ref)) {
      auto it = id2len_.find(std::to_string(sent));
      // UNITER raises KeyError on a sentence id2len dropped; it is skipped here.
      if (it == id2len_.end()) continue;
      if (max_txt_len_ < 0 || it->second < max_txt_len_) out.push_back(it->first);
    }
  }
  return out;
}

ReExample ReTxtDb::Get(const std::string& sent_id) const {
  const auto v = db_->Get(sent_id);
  const std::string where = dir_ + "[" + sent_id + "]";
  if (!v) throw FormatError("sentence is not in the txt_db", where);
  ReExample ex;
  ex.sent_id = sent_id;
  try {
    ex.input_ids = Wrap(cls_, Ids64(featdb::InputIds(*v)), sep_);
    ex.image_id = featdb::IntField(*v, "image_id");
    ex.ann_id = featdb::IntField(*v, "ann_id");
    const featdb::Value* bbox = v->Find("bbox");
    if (!bbox || bbox->type() != featdb::Value::Type::kArray || bbox->as_array().size() != 4)
      throw FormatError("needs bbox [x, y, w, h]", where);
    ex.bbox_is_int = true;
    for (const auto& x : bbox->as_array()) {
      ex.bbox.push_back(x.as_double());
      ex.bbox_is_int = ex.bbox_is_int && x.type() == featdb::Value::Type::kInt;
    }
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    throw FormatError(e.message(), where);
  }
  return ex;
}

const ReImage& ReTxtDb::Image(int64_t image_id, const std::string& sent_id) const {
  auto it = images_.find(image_id);
  if (it == images_.end())
    throw FormatError("image_id " + std::to_string(image_id) + " of sentence " + sent_id + " is not in images.json",
                      dir_ + "/images.json");
  return it->second;
}

std::string ReImageName(int64_t image_id, bool gt) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), gt ? "visual_grounding_coco_gt_%012lld.npz" : "visual_grounding_det_coco_%012lld.npz",
                static_cast<long long>(image_id));
  return buf;
}

bool ReIsGtDb(const std::string& img_db) { return img_db.find("coco_gt") != std::string::npos; }

ReItem GetReItem(const ReTxtDb& txt, const ImgFeatDb& img, const std::string& sent_id, bool gt, bool training) {
  ReItem item;
  item.ex = txt.Get(sent_id);
  item.img = img.Get(ReImageName(item.ex.image_id, gt));
  const ReImage& info = txt.Image(item.ex.image_id, sent_id);
  if (training) {
    const std::string where = txt.dir() + "[" + sent_id + "]";
    if (static_cast<int64_t>(info.ann_ids.size()) != item.img.nbb)
      throw FormatError("image " + std::to_string(item.ex.image_id) + " has " + std::to_string(item.img.nbb) +
                            " boxes in " + img.dir() + " but " + std::to_string(info.ann_ids.size()) +
                            " ann_ids in images.json (training needs the gt boxes, a coco_gt img_db)",
                        where);
    auto it = std::find(info.ann_ids.begin(), info.ann_ids.end(), item.ex.ann_id);
    if (it == info.ann_ids.end())
      throw FormatError("the referent box (ann_id " + std::to_string(item.ex.ann_id) + ") is not among image " +
                            std::to_string(item.ex.image_id) + "'s boxes",
                        where);
    item.target = it - info.ann_ids.begin();
  }
  // ReEvalDataset: img_pos_feat (x1, y1, x2, y2, w, h) → xywh in pixels, in float32.
  const auto w = static_cast<float>(info.width), h = static_cast<float>(info.height);
  for (int64_t r = 0; r < item.img.nbb; ++r) {
    const float* p = item.img.pos.data() + r * 7;
    item.obj_boxes.insert(item.obj_boxes.end(), {p[0] * w, p[1] * h, p[4] * w, p[5] * h});
  }
  return item;
}

Batch CollateRe(const std::vector<ReItem>& items, bool training) {
  std::vector<RowSpec> rows;
  for (const ReItem& it : items) rows.push_back({it.ex.input_ids, {}, {&it.img}});
  Batch b = CollateRows(rows);
  for (const ReItem& it : items) b.qids.push_back(it.ex.sent_id);
  b.num_examples = static_cast<int64_t>(items.size());
  if (training) {
    b.targets = at::empty({b.num_examples}, at::kLong);
    for (int64_t i = 0; i < b.num_examples; ++i) b.targets.data_ptr<int64_t>()[i] = items[i].target;
  }
  return b;
}

// --------------------------------------------------------------------- VCR

VcrTxtDb::VcrTxtDb(const std::string& dir, int max_txt_len, const std::string& task) : dir_(dir) {
  if (!fs::is_directory(dir)) throw IoError("txt_db not found (no such folder)", dir);
  db_ = std::make_unique<featdb::TxtDbReader>(dir);
  ReadMeta(dir, &cls_, &sep_);
  const std::string file = "id2len_" + task + ".json";
  try {
    const auto id2len = ReadSidecar(dir, file);
    for (const auto& [id, len] : id2len.items()) {
      const int64_t l = len.get<int64_t>();
      if (max_txt_len >= 0 && l > max_txt_len) continue;
      ids_.push_back(id);
      lens_.push_back(l);
    }
    const auto txt2img = ReadSidecar(dir, "txt2img.json");
    for (const auto& [id, names] : txt2img.items())
      txt2img_[id] = names.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("VCR sidecars: ") + e.what(), dir);
  }
}

VcrTxtDb::~VcrTxtDb() = default;

const std::vector<std::string>& VcrTxtDb::Images(const std::string& id) const {
  auto it = txt2img_.find(id);
  if (it == txt2img_.end() || it->second.size() != 2)
    throw FormatError("example '" + id + "' needs [gt, det] image names in txt2img.json", dir_ + "/txt2img.json");
  return it->second;
}

VcrExample VcrTxtDb::Get(const std::string& id) const {
  const auto v = db_->Get(id);
  const std::string where = dir_ + "[" + id + "]";
  if (!v) throw FormatError("example is not in the txt_db", where);
  VcrExample ex;
  ex.id = id;
  try {
    ex.q = Ids64(featdb::InputIds(*v));
    for (const auto& a : featdb::IntListList(*v, "input_ids_as")) ex.as.push_back(Ids64(a));
    for (const auto& r : featdb::IntListList(*v, "input_ids_rs")) ex.rs.push_back(Ids64(r));
    ex.qa_target = featdb::IntField(*v, "qa_target");
    ex.qar_target = featdb::IntField(*v, "qar_target");
    ex.img_fnames = featdb::ImgFnames(*v);
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    throw FormatError(e.message(), where);
  }
  if (ex.as.size() != 4 || ex.rs.size() != 4) throw FormatError("VCR needs 4 answers and 4 rationales", where);
  if (ex.img_fnames.size() != 2) throw FormatError("VCR needs img_fname [gt, det]", where);
  return ex;
}

VcrImgDbs OpenVcrImgDbs(const std::string& spec, const ImgDbOptions& options) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t semi = spec.find(';', start);
    parts.push_back(spec.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  if (parts.size() > 2) throw UsageError("VCR img_db '" + spec + "': more than two img_dbs (expected \"gt_dir;det_dir\")");
  VcrImgDbs dbs;
  for (const std::string& d : parts) {
    if (d.empty()) continue;
    if (d.find("gt") != std::string::npos) {
      ImgDbOptions gt = options;
      gt.conf_th = -1;
      gt.num_bb = 100;
      dbs.gt = std::make_shared<const ImgFeatDb>(d, gt);
    } else {
      dbs.det = std::make_shared<const ImgFeatDb>(d, options);
    }
  }
  if (!dbs.gt && !dbs.det) throw UsageError("VCR img_db '" + spec + "' names no img_db");
  return dbs;
}

VcrImage GetVcrImage(const VcrImgDbs& dbs, const VcrExample& ex) {
  VcrImage out;
  if (dbs.gt) out.gt = dbs.gt->Get(ex.img_fnames[0]), out.has_gt = true;
  if (dbs.det) out.det = dbs.det->Get(ex.img_fnames[1]), out.has_det = true;
  return out;
}

int64_t VcrLen(const VcrImgDbs& dbs, const VcrTxtDb& txt, size_t i) {
  const auto& names = txt.Images(txt.ids()[i]);
  return txt.lens()[i] + (dbs.gt ? dbs.gt->Nbb(names[0]) : 0) + (dbs.det ? dbs.det->Nbb(names[1]) : 0);
}

namespace {
std::vector<const ImageFeat*> Images(const VcrImage& img) {
  std::vector<const ImageFeat*> out;
  if (img.has_gt) out.push_back(&img.gt);
  if (img.has_det) out.push_back(&img.det);
  return out;
}
}  // namespace

std::vector<RowSpec> VcrTrainRows(const VcrTxtDb& txt, const VcrExample& ex, const VcrImage& img,
                                  const std::string& task, std::vector<int64_t>* targets) {
  std::vector<int64_t> q = ex.q, q_types(ex.q.size(), 0);
  const std::vector<std::vector<int64_t>>* choices = &ex.as;
  int64_t label = ex.qa_target;
  const std::string where = txt.dir() + "[" + ex.id + "]";
  if (task == "qar") {
    if (ex.qa_target < 0 || ex.qa_target > 3) throw FormatError("QA→R training needs qa_target in 0..3", where);
    q.push_back(txt.sep());
    q.insert(q.end(), ex.as[ex.qa_target].begin(), ex.as[ex.qa_target].end());
    q_types.resize(q.size(), 2);
    choices = &ex.rs;
    label = ex.qar_target;
  }
  if (label < 0 || label > 3) throw FormatError(task + "_target must be in 0..3 for training", where);
  const int64_t choice_type = task == "qar" ? 3 : 2;
  std::vector<RowSpec> rows;
  for (size_t k = 0; k < choices->size(); ++k) {
    RowSpec r;
    r.input_ids = {txt.cls()};
    r.input_ids.insert(r.input_ids.end(), q.begin(), q.end());
    r.input_ids.push_back(txt.sep());
    r.input_ids.insert(r.input_ids.end(), (*choices)[k].begin(), (*choices)[k].end());
    r.input_ids.push_back(txt.sep());
    r.txt_type_ids = {0};
    r.txt_type_ids.insert(r.txt_type_ids.end(), q_types.begin(), q_types.end());
    r.txt_type_ids.resize(r.input_ids.size(), choice_type);
    r.images = Images(img);
    rows.push_back(std::move(r));
    targets->push_back(static_cast<int64_t>(k) == label ? 1 : 0);
  }
  return rows;
}

std::vector<RowSpec> VcrEvalRows(const VcrTxtDb& txt, const VcrExample& ex, const VcrImage& img, bool test_split) {
  std::vector<RowSpec> rows;
  std::vector<RowSpec> qa;
  for (const auto& a : ex.as) {
    RowSpec r;
    r.input_ids = {txt.cls()};
    r.input_ids.insert(r.input_ids.end(), ex.q.begin(), ex.q.end());
    r.input_ids.push_back(txt.sep());
    r.input_ids.insert(r.input_ids.end(), a.begin(), a.end());
    r.input_ids.push_back(txt.sep());
    r.txt_type_ids.assign(1 + ex.q.size(), 0);
    r.txt_type_ids.resize(r.input_ids.size(), 2);
    r.images = Images(img);
    qa.push_back(r);
    rows.push_back(std::move(r));
  }
  for (size_t k = 0; k < qa.size(); ++k) {
    if (!test_split && static_cast<int64_t>(k) != ex.qa_target) continue;
    for (const auto& rat : ex.rs) {
      RowSpec r = qa[k];
      r.input_ids.insert(r.input_ids.end(), rat.begin(), rat.end());
      r.input_ids.push_back(txt.sep());
      // Types: CLS q → 0, SEP a → 2, then SEP r SEP → 3 (the answer's closing SEP opens r).
      r.txt_type_ids.resize(1 + ex.q.size() + 1 + ex.as[k].size());
      r.txt_type_ids.resize(r.input_ids.size(), 3);
      rows.push_back(std::move(r));
    }
  }
  if (!test_split && (ex.qa_target < 0 || ex.qa_target > 3))
    throw FormatError("val evaluation needs qa_target in 0..3", txt.dir() + "[" + ex.id + "]");
  return rows;
}

}  // namespace uniter::trainer::data
