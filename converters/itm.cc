// Image-text retrieval: Karpathy's dataset_coco.json / dataset_flickr30k.json →
// one UNITER itm txt_db per split, as the fuller UNITER prepro
// (process_image_text_retrieval) writes them.
#include <algorithm>
#include <cctype>

#include "common/error.h"
#include "converters/internal/readers.h"
#include "converters/internal/sources.h"
#include "converters/internal/task.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace {

namespace dom = simdjson::dom;

// The last run of digits in a file name: COCO_val2014_000000391895.jpg → 391895.
int64_t TrailingNumber(std::string_view name) {
  const size_t dot = name.rfind('.');
  std::string_view stem = name.substr(0, dot);
  size_t end = stem.size();
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(stem[begin - 1]))) --begin;
  if (begin == end) throw FormatError("no image id in file name '" + std::string(name) + "'");
  return ParseInt(stem.substr(begin, end - begin), "image id");
}

class ItmTask : public Task {
 public:
  void Prepare(const TaskContext& ctx) override {
    ctx_ = &ctx;
    if (ctx.options->annotations.size() != 1) throw UsageError("itm takes one --ann (Karpathy's dataset_*.json)");
    const std::string& path = ctx.Annotation(0);
    doc_ = LoadJsonDocument(path);
    dom::object root = AsObject(doc_.root, path);
    dom::array images;
    if (root["images"].get_array().get(images)) throw FormatError("no 'images' list (not a Karpathy split file?)", path);
    dataset_ = ctx.Flag("dataset");
    std::string_view ds;
    if (dataset_.empty() && !root["dataset"].get_string().get(ds)) dataset_ = std::string(ds);
    if (dataset_.empty()) throw UsageError("cannot tell the dataset: give --dataset coco or flickr30k");
    if (dataset_ != "coco" && dataset_.rfind("flickr", 0) != 0)
      throw UsageError("--dataset must be coco or flickr30k, not '" + dataset_ + "'");
    const std::vector<std::string> wanted = ctx.FlagList("split");
    for (dom::element im : images) {
      std::string_view split;
      if (im["split"].get_string().get(split)) continue;  // reported per record
      const std::string s(split);
      if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), s) == wanted.end()) continue;
      if (std::find(splits_.begin(), splits_.end(), s) == splits_.end()) splits_.push_back(s);
    }
    for (const auto& w : wanted)
      if (std::find(splits_.begin(), splits_.end(), w) == splits_.end())
        throw UsageError("split '" + w + "' has no images in " + path);
    source_.Add(0, images);
  }

  std::vector<std::string> Dbs() const override {
    std::vector<std::string> dbs;
    for (const auto& s : splits_) dbs.push_back(DbName(s));
    return dbs;
  }

  bool Next(Unit* u) override { return source_.Next(u); }

  void Convert(const Unit& u, std::vector<Example>* out) const override {
    dom::object im = AsObject(u.elem, "image");
    const std::string filename(StrField(im, "filename"));
    WithKey(filename, [&] {
      const std::string split(StrField(im, "split"));
      if (std::find(splits_.begin(), splits_.end(), split) == splits_.end()) return;
      int64_t image_id;
      std::string img;
      if (dataset_ == "coco") {
        // restval images live in val2014: the folder comes from filepath (or the file name).
        std::string folder;
        if (Has(im, "filepath")) folder = std::string(StrField(im, "filepath"));
        else folder = filename.find("train2014") != std::string::npos ? "train2014" : "val2014";
        image_id = Has(im, "cocoid") ? IntField(im, "cocoid") : TrailingNumber(filename);
        img = "coco_" + folder + "_" + Pad12(image_id) + ".npz";
      } else {
        image_id = TrailingNumber(filename);
        img = "flickr30k_" + Pad12(image_id) + ".npz";
      }
      for (dom::element s : ArrayField(im, "sentences")) {
        dom::object so = AsObject(s, "sentence");
        Example ex;
        ex.db = DbName(split);
        ex.key = std::to_string(IntField(so, "sentid"));
        const std::vector<int32_t> ids = ctx_->toker->Encode(StrField(so, "raw"));
        ex.value = ObjectToMap(so);
        ex.value.Set("image_id", featdb::Value(image_id));
        ex.value.Set("input_ids", featdb::Value::IntList(ids));
        ex.value.Set("img_fname", featdb::Value::Str(img));
        ex.img_fnames = {img};
        ex.lens.emplace_back("id2len", static_cast<int64_t>(ids.size()));
        out->push_back(std::move(ex));
      }
    });
  }

  nlohmann::json MetaOptions(const std::string& db) const override {
    nlohmann::json j;
    j["dataset"] = dataset_;
    for (const auto& s : splits_)
      if (DbName(s) == db) j["split"] = s;
    return j;
  }

 private:
  std::string DbName(const std::string& split) const {
    return "itm_" + std::string(dataset_ == "coco" ? "coco" : "flickr30k") + "_" + split + ".db";
  }

  JsonDocument doc_;
  ElementsSource source_;
  std::string dataset_;
  std::vector<std::string> splits_;
};

}  // namespace

std::unique_ptr<Task> MakeItmTask() { return std::make_unique<ItmTask>(); }

TaskInfo ItmTaskInfo() {
  return {"itm", "Karpathy dataset_coco.json / dataset_flickr30k.json -> one itm txt_db per split",
          "Inputs: --ann dataset_coco.json or dataset_flickr30k.json (Karpathy's splits).\n"
          "Output: under --output DIR, one txt_db per split: itm_<coco|flickr30k>_<split>.db (train,\n"
          "restval, val, test; --split picks some). Key = str(sentid). Record = the sentence's fields\n"
          "(tokens, raw, imgid, sentid) plus image_id, input_ids (of raw) and img_fname:\n"
          "coco_<train2014|val2014>_<cocoid:012>.npz or flickr30k_<flickr id:012>.npz.\n"
          "Sidecars per db: meta.json, id2len.json, txt2img.json, img2txts.json (image -> its captions).",
          {{"split", "only these Karpathy splits (repeatable; default: all)", true},
           {"dataset", "coco or flickr30k (default: the file's \"dataset\" field)", false}}};
}

}  // namespace uniter::converters
