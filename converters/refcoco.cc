// RefCOCO, RefCOCO+, RefCOCOg: refs(unc|umd|google).p (a Python 2 pickle, read
// with the safe pickle reader) + COCO instances.json + the image → detection
// (ann) id map → one UNITER re txt_db per split, with the images /
// annotations / categories / refs sidecars UNITER's prepro.py writes.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "common/pickle_reader.h"
#include "common/rejects.h"
#include "converters/internal/readers.h"
#include "converters/internal/sources.h"
#include "converters/internal/task.h"
#include "featdb/txt_db.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace {

namespace dom = simdjson::dom;

std::string KeyString(const PyValue& k) {
  switch (k.kind) {
    case PyValue::Kind::kStr: case PyValue::Kind::kBytes: return k.s;
    case PyValue::Kind::kInt: return std::to_string(k.i);
    default: throw FormatError(std::string("dict key of type ") + k.TypeName() + " has no JSON form");
  }
}

// As Python's json.dump / msgpack.dumps would write the unpickled value
// (tuples become lists, int keys become strings in JSON).
nlohmann::json PyToJson(const PyValue& v) {
  switch (v.kind) {
    case PyValue::Kind::kNone: return nullptr;
    case PyValue::Kind::kBool: return v.b;
    case PyValue::Kind::kInt: return v.i;
    case PyValue::Kind::kFloat: return v.f;
    case PyValue::Kind::kStr: case PyValue::Kind::kBytes: return v.s;
    case PyValue::Kind::kList: case PyValue::Kind::kTuple: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& c : v.items) a.push_back(PyToJson(c));
      return a;
    }
    case PyValue::Kind::kDict: {
      nlohmann::json o = nlohmann::json::object();
      for (size_t i = 0; i < v.keys.size(); ++i) o[KeyString(v.keys[i])] = PyToJson(v.values[i]);
      return o;
    }
    case PyValue::Kind::kGlobal: case PyValue::Kind::kObject: case PyValue::Kind::kPersistentId:
      break;  // only pickles read with an allowlist hold these; refs(unc).p is read without one
  }
  return nullptr;
}

featdb::Value PyToValue(const PyValue& v) {
  switch (v.kind) {
    case PyValue::Kind::kNone: return featdb::Value();
    case PyValue::Kind::kBool: return featdb::Value(v.b);
    case PyValue::Kind::kInt: return featdb::Value(v.i);
    case PyValue::Kind::kFloat: return featdb::Value(v.f);
    case PyValue::Kind::kStr: return featdb::Value::Str(v.s);
    case PyValue::Kind::kBytes: return featdb::Value::Bin(v.s);
    case PyValue::Kind::kList: case PyValue::Kind::kTuple: {
      featdb::Value a = featdb::Value::Array();
      for (const auto& c : v.items) a.Append(PyToValue(c));
      return a;
    }
    case PyValue::Kind::kDict: {
      featdb::Value m = featdb::Value::Map();
      for (size_t i = 0; i < v.keys.size(); ++i) m.Set(KeyString(v.keys[i]), PyToValue(v.values[i]));
      return m;
    }
    case PyValue::Kind::kGlobal: case PyValue::Kind::kObject: case PyValue::Kind::kPersistentId:
      break;  // as in PyToJson
  }
  return featdb::Value();
}

const PyValue& Need(const PyValue& d, std::string_view key) {
  if (d.kind != PyValue::Kind::kDict) throw FormatError(std::string("expected a dict, got ") + d.TypeName());
  const PyValue* v = d.Find(key);
  if (!v) throw FormatError("missing field '" + std::string(key) + "'");
  return *v;
}

int64_t NeedInt(const PyValue& d, std::string_view key) {
  const PyValue& v = Need(d, key);
  if (!v.is_int()) throw FormatError("field '" + std::string(key) + "' is not an int");
  return v.i;
}

std::string NeedStr(const PyValue& d, std::string_view key) {
  const PyValue& v = Need(d, key);
  if (!v.is_str()) throw FormatError("field '" + std::string(key) + "' is not a str");
  return v.s;
}

struct SplitData {
  nlohmann::json images = nlohmann::json::array();
  nlohmann::json annotations = nlohmann::json::array();
  nlohmann::json refs = nlohmann::json::array();
  std::unordered_map<int64_t, featdb::Value> bbox;  // ann id → bbox (xywh)
};

class RefcocoTask : public Task {
 public:
  void Prepare(const TaskContext& ctx) override {
    ctx_ = &ctx;
    const auto& anns = ctx.options->annotations;
    if (anns.size() != 3)
      throw UsageError("refcoco takes --ann refs(unc).p --ann instances.json --ann IID_TO_ANN_IDS.json");
    dataset_ = ctx.Flag("dataset", "refcoco");
    refs_ = ReadPickleFile(anns[0]);
    if (refs_.kind != PyValue::Kind::kList) throw FormatError("expected a list of refs", anns[0]);

    const std::vector<std::string> wanted = ctx.FlagList("split");
    std::unordered_map<std::string, std::unordered_set<int64_t>> image_sets;
    for (size_t i = 0; i < refs_.items.size(); ++i) {
      const PyValue& r = refs_.items[i];
      std::string split;
      int64_t image_id;
      try {
        split = NeedStr(r, "split");
        image_id = NeedInt(r, "image_id");
      } catch (const Error& e) {
        continue;  // reported by Convert
      }
      if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), split) == wanted.end()) continue;
      if (!splits_.count(split)) order_.push_back(split);
      splits_[split].refs.push_back(PyToJson(r));
      image_sets[split].insert(image_id);
    }
    for (const auto& w : wanted)
      if (!splits_.count(w)) throw UsageError("split '" + w + "' has no refs in " + anns[0]);

    JsonDocument instances = LoadJsonDocument(anns[1]);
    dom::object inst = AsObject(instances.root, anns[1]);
    JsonDocument iid_doc = LoadJsonDocument(anns[2]);
    dom::object iid_map = AsObject(iid_doc.root, anns[2]);
    dom::element inner;
    if (!iid_map["iid_to_ann_ids"].get(inner)) iid_map = AsObject(inner, anns[2]);
    try {
      categories_ = ToJson(Field(inst, "categories"));
      for (dom::element im : ArrayField(inst, "images")) {
        dom::object o = AsObject(im, "image");
        const int64_t id = IntField(o, "id");
        for (auto& [split, data] : splits_) {
          if (!image_sets[split].count(id)) continue;
          dom::element ann_ids;
          if (iid_map[std::to_string(id)].get(ann_ids))
            throw FormatError("image " + std::to_string(id) + " is missing from " + anns[2]);
          nlohmann::json j;
          j["id"] = id;
          j["file_name"] = std::string(StrField(o, "file_name"));
          j["ann_ids"] = ToJson(ann_ids);
          j["height"] = ToJson(Field(o, "height"));
          j["width"] = ToJson(Field(o, "width"));
          data.images.push_back(std::move(j));
        }
      }
      for (dom::element a : ArrayField(inst, "annotations")) {
        dom::object o = AsObject(a, "annotation");
        const int64_t image_id = IntField(o, "image_id");
        for (auto& [split, data] : splits_) {
          if (!image_sets[split].count(image_id)) continue;
          nlohmann::json j;
          j["id"] = IntField(o, "id");
          j["area"] = ToJson(Field(o, "area"));
          j["bbox"] = ToJson(Field(o, "bbox"));
          j["image_id"] = image_id;
          j["category_id"] = ToJson(Field(o, "category_id"));
          j["iscrowd"] = ToJson(Field(o, "iscrowd"));
          data.bbox.emplace(IntField(o, "id"), ToValue(Field(o, "bbox")));
          data.annotations.push_back(std::move(j));
        }
      }
    } catch (const Error& e) {
      if (!e.where().empty()) throw;
      throw FormatError(e.message(), anns[1]);
    }
  }

  std::vector<std::string> Dbs() const override {
    std::vector<std::string> dbs;
    for (const auto& s : order_) dbs.push_back(dataset_ + "_" + s + ".db");
    return dbs;
  }

  bool Next(Unit* u) override {
    if (next_ >= refs_.items.size()) return false;
    u->file = 0;
    u->index = next_++;
    return true;
  }

  void Convert(const Unit& u, std::vector<Example>* out) const override {
    const PyValue& r = refs_.items[u.index];
    std::string key = "refs[" + std::to_string(u.index) + "]";
    if (r.kind == PyValue::Kind::kDict && r.Find("ref_id") && r.Find("ref_id")->is_int())
      key = "ref_id " + std::to_string(r.Find("ref_id")->i);
    WithKey(key, [&] {
      const std::string split = NeedStr(r, "split");
      auto it = splits_.find(split);
      if (it == splits_.end()) return;  // not selected
      const int64_t ref_id = NeedInt(r, "ref_id");
      const int64_t ann_id = NeedInt(r, "ann_id");
      const int64_t image_id = NeedInt(r, "image_id");
      auto bbox = it->second.bbox.find(ann_id);
      if (bbox == it->second.bbox.end())
        throw FormatError("ann_id " + std::to_string(ann_id) + " is not in the instances file");
      const std::string img = "visual_grounding_coco_gt_" + Pad12(image_id) + ".npz";
      const PyValue& sents = Need(r, "sentences");
      if (!sents.is_seq()) throw FormatError("field 'sentences' is not a list");
      for (const PyValue& s : sents.items) {
        const int64_t sent_id = NeedInt(s, "sent_id");
        const PyValue& sent = Need(s, "sent");
        if (!sent.is_str()) throw FormatError("sentence " + std::to_string(sent_id) + " is not a str");
        const std::vector<int32_t> ids = ctx_->toker->Encode(sent.s);
        Example ex;
        ex.db = dataset_ + "_" + split + ".db";
        ex.key = std::to_string(sent_id);
        ex.value = featdb::Value::Map();
        ex.value.Set("sent_id", featdb::Value(sent_id));
        ex.value.Set("sent", featdb::Value::Str(sent.s));
        ex.value.Set("ref_id", featdb::Value(ref_id));
        ex.value.Set("ann_id", featdb::Value(ann_id));
        ex.value.Set("image_id", featdb::Value(image_id));
        ex.value.Set("bbox", bbox->second);
        ex.value.Set("input_ids", featdb::Value::IntList(ids));
        ex.value.Set("img_fname", featdb::Value::Str(img));
        ex.img_fnames = {img};
        ex.lens.emplace_back("id2len", static_cast<int64_t>(ids.size()));
        out->push_back(std::move(ex));
      }
    });
  }

  bool WritesImg2Txts() const override { return false; }

  nlohmann::json MetaOptions(const std::string& db) const override {
    nlohmann::json j;
    j["dataset"] = dataset_;
    for (const auto& s : order_)
      if (dataset_ + "_" + s + ".db" == db) j["split"] = s;
    return j;
  }

  void Finish(const std::string& db, featdb::TxtDbWriter& w, RejectsFile&) override {
    for (auto& [split, data] : splits_) {
      if (dataset_ + "_" + split + ".db" != db) continue;
      w.WriteJson("images.json", data.images);
      w.WriteJson("annotations.json", data.annotations);
      w.WriteJson("categories.json", categories_);
      w.WriteJson("refs.json", data.refs);
    }
  }

 private:
  std::string dataset_;
  PyValue refs_;
  std::map<std::string, SplitData> splits_;
  std::vector<std::string> order_;
  nlohmann::json categories_;
  size_t next_ = 0;
};

}  // namespace

std::unique_ptr<Task> MakeRefcocoTask() { return std::make_unique<RefcocoTask>(); }

TaskInfo RefcocoTaskInfo() {
  return {"refcoco", "RefCOCO/RefCOCO+/RefCOCOg refs pickle + instances.json -> one re txt_db per split",
          "Inputs, in this order: --ann refs(unc).p (or refs(umd).p, refs(google).p; the Python 2 pickle,\n"
          "read by a safe reader that accepts only plain data) --ann instances.json --ann IID2ANN.json\n"
          "(image id -> ann ids in the order of the gt features: {\"iid_to_ann_ids\": {...}} or the bare map).\n"
          "Output: under --output DIR, one txt_db per split: <dataset>_<split>.db (refcoco/refcoco+: train,\n"
          "val, testA, testB; refcocog umd: train, val, test; --split picks some). Key = str(sent_id).\n"
          "Record = sent_id, sent, ref_id, ann_id, image_id, bbox (xywh from instances), input_ids,\n"
          "img_fname visual_grounding_coco_gt_<image_id:012>.npz.\n"
          "Sidecars per db, as UNITER's prepro.py writes them: images.json (id, file_name, ann_ids, height,\n"
          "width), annotations.json, categories.json, refs.json; and meta.json, id2len.json, txt2img.json.",
          {{"dataset", "refcoco, refcoco+ or refcocog: names the dbs (default refcoco)", false},
           {"split", "only these splits (repeatable; default: all)", true}}};
}

}  // namespace uniter::converters
