// Pretraining captions: COCO captions_*.json, Conceptual Captions TSV, SBU
// (JSON list), Visual Genome region_descriptions.json → caption txt_db for
// MLM/ITM/MRM, as the fuller UNITER prepro (process_caption,
// process_conceptual_caption, process_sbu_caption) writes them.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/error.h"
#include "converters/internal/readers.h"
#include "converters/internal/sources.h"
#include "converters/internal/task.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace {

namespace dom = simdjson::dom;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// COCO image folder from a captions file name (captions_val2014.json → val2014).
std::string CocoSplit(const std::string& path) {
  const std::string name = Lower(std::filesystem::path(path).filename().string());
  for (const char* s : {"train2014", "val2014", "test2015", "train2017", "val2017", "test2017"})
    if (name.find(s) != std::string::npos) return s;
  throw UsageError("cannot tell the COCO image split from '" + path + "': give --image-split (e.g. train2014)");
}

enum class Source { kCoco, kCc, kSbu, kVg };

class CaptionsTask : public Task {
 public:
  void Prepare(const TaskContext& ctx) override {
    ctx_ = &ctx;
    const std::string s = ctx.Flag("source");
    if (s == "coco") source_ = Source::kCoco;
    else if (s == "cc") source_ = Source::kCc;
    else if (s == "sbu") source_ = Source::kSbu;
    else if (s == "vg") source_ = Source::kVg;
    else throw UsageError("captions needs --source coco, cc, sbu or vg");
    const auto& anns = ctx.options->annotations;
    std::vector<uint32_t> files;
    for (uint32_t i = 0; i < anns.size(); ++i) {
      files.push_back(i);
      if (source_ == Source::kCoco) {
        const std::string split = ctx.Flag("image-split");
        splits_.push_back(split.empty() ? CocoSplit(anns[i]) : split);
      } else if (source_ == Source::kCc) {
        const std::string split = ctx.Flag("split");
        splits_.push_back(!split.empty() ? split
                                         : Lower(std::filesystem::path(anns[i]).filename().string()).find("train") !=
                                                   std::string::npos
                                               ? "train"
                                               : "val");
      }
    }
    if (source_ == Source::kCc) {
      lines_ = LinesSource(ctx, files);
      return;
    }
    for (uint32_t i = 0; i < anns.size(); ++i) {
      docs_.push_back(LoadJsonDocument(anns[i]));
      dom::array list;
      if (source_ == Source::kCoco) {
        if (AsObject(docs_.back().root, anns[i])["annotations"].get_array().get(list))
          throw FormatError("no 'annotations' list (not a COCO captions file?)", anns[i]);
      } else if (docs_.back().root.get_array().get(list)) {
        throw FormatError("expected a JSON list", anns[i]);
      }
      elements_.Add(i, list);
    }
  }

  bool Next(Unit* u) override { return source_ == Source::kCc ? lines_.Next(u) : elements_.Next(u); }

  void Convert(const Unit& u, std::vector<Example>* out) const override {
    switch (source_) {
      case Source::kCoco: return Coco(u, out);
      case Source::kCc: return Cc(u, out);
      case Source::kSbu: return Sbu(u, out);
      case Source::kVg: return Vg(u, out);
    }
  }

  nlohmann::json MetaOptions(const std::string&) const override {
    nlohmann::json j;
    j["source"] = ctx_->Flag("source");
    if (!splits_.empty()) j["image_splits"] = splits_;
    return j;
  }

 private:
  std::vector<int32_t> Tokens(std::string_view text) const {
    std::vector<int32_t> ids = ctx_->toker->Encode(text);
    if (ids.empty()) throw FormatError("caption has no tokens");
    return ids;
  }

  void Emit(std::string key, featdb::Value value, const std::vector<int32_t>& ids, std::string img,
            std::vector<Example>* out) const {
    Example ex;
    ex.key = std::move(key);
    value.Set("input_ids", featdb::Value::IntList(ids));
    value.Set("img_fname", featdb::Value::Str(img));
    ex.value = std::move(value);
    ex.img_fnames = {std::move(img)};
    ex.lens.emplace_back("id2len", static_cast<int64_t>(ids.size()));
    out->push_back(std::move(ex));
  }

  void Coco(const Unit& u, std::vector<Example>* out) const {
    dom::object o = AsObject(u.elem, "annotation");
    const std::string key = std::to_string(IntField(o, "id"));
    WithKey(key, [&] {
      const std::vector<int32_t> ids = Tokens(StrField(o, "caption"));
      Emit(key, ObjectToMap(o), ids, "coco_" + splits_[u.file] + "_" + Pad12(IntField(o, "image_id")) + ".npz",
           out);
    });
  }

  // Official GCC TSV: caption \t url (id = 0-based row). UNITER's download
  // format: id \t url \t caption \t success|fail (fail rows are skipped).
  void Cc(const Unit& u, std::vector<Example>* out) const {
    const std::vector<std::string_view> f = SplitTabs(u.text);
    std::string id, caption, url;
    if (f.size() == 2) {
      id = std::to_string(u.line - 1);
      caption = std::string(f[0]);
      url = std::string(f[1]);
    } else if (f.size() == 4) {
      if (f[3] == "fail") return;
      if (f[3] != "success") throw FormatError("4th column is neither success nor fail");
      id = std::string(f[0]);
      url = std::string(f[1]);
      caption = std::string(f[2]);
    } else {
      throw FormatError("expected 2 (caption, url) or 4 (id, url, caption, status) tab-separated columns, got " +
                        std::to_string(f.size()));
    }
    WithKey(id, [&] {
      if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw FormatError("id is not a number");
      const std::vector<int32_t> ids = Tokens(caption);
      featdb::Value v = featdb::Value::Map();
      v.Set("id", featdb::Value::Str(id));
      v.Set("caption", featdb::Value::Str(caption));
      v.Set("url", featdb::Value::Str(url));
      Emit(id, std::move(v), ids, "gcc_" + splits_[u.file] + "_" + Pad12(ParseInt(id, "id")) + ".npz", out);
    });
  }

  // [{iid, sent, ...}]; img sbu_<iid>.npz.
  void Sbu(const Unit& u, std::vector<Example>* out) const {
    dom::object o = AsObject(u.elem, "caption");
    dom::element iid = Field(o, "iid");
    std::string id;
    std::string_view s;
    int64_t n;
    if (!iid.get_int64().get(n)) id = std::to_string(n);
    else if (!iid.get_string().get(s)) {
      id = std::string(s);
      // UNITER strips leading zeros of numeric ids (its feature files do too).
      if (!id.empty() && id.find_first_not_of("0123456789") == std::string::npos && id.size() < 19)
        id = std::to_string(ParseInt(id, "iid"));
    } else {
      throw FormatError("field 'iid' is neither int nor str");
    }
    WithKey(id, [&] {
      const std::vector<int32_t> ids = Tokens(StrField(o, "sent"));
      featdb::Value v = featdb::Value::Map();
      v.Set("id", featdb::Value::Str(id));
      v.Set("sent", featdb::Value::Str(std::string(StrField(o, "sent"))));
      Emit(id, std::move(v), ids, "sbu_" + id + ".npz", out);
    });
  }

  // region_descriptions.json: [{id, regions: [{region_id, image_id, phrase, x, y, width, height}]}].
  void Vg(const Unit& u, std::vector<Example>* out) const {
    dom::object im = AsObject(u.elem, "image");
    for (dom::element r : ArrayField(im, "regions")) {
      dom::object o = AsObject(r, "region");
      const std::string key = std::to_string(IntField(o, "region_id"));
      WithKey(key, [&] {
        const std::vector<int32_t> ids = Tokens(StrField(o, "phrase"));
        Emit(key, ObjectToMap(o), ids, "vg_" + Pad12(IntField(o, "image_id")) + ".npz", out);
      });
    }
  }

  Source source_ = Source::kCoco;
  std::vector<std::string> splits_;  // per --ann file (coco, cc)
  LinesSource lines_;
  std::vector<JsonDocument> docs_;
  ElementsSource elements_;
};

}  // namespace

std::unique_ptr<Task> MakeCaptionsTask() { return std::make_unique<CaptionsTask>(); }

TaskInfo CaptionsTaskInfo() {
  return {"captions", "COCO / Conceptual Captions / SBU / VG captions -> pretraining txt_db",
          "Inputs (--source says which): coco: captions_<split>.json (annotations: id, image_id, caption);\n"
          "cc: Conceptual Captions TSV, either the official 2 columns (caption, url; id = 0-based row) or\n"
          "UNITER's download list (id, url, caption, success|fail; fail rows are skipped); sbu: a JSON list of\n"
          "{iid, sent}; vg: region_descriptions.json. Several --ann files go into one db.\n"
          "Output: one txt_db at --output. Key = annotation id (coco), row id (cc), iid (sbu), region_id (vg).\n"
          "Record = the source fields plus input_ids and img_fname: coco_<split>_<image_id:012>.npz,\n"
          "gcc_<train|val>_<id:012>.npz, sbu_<iid>.npz, vg_<image_id:012>.npz. A caption with no tokens is\n"
          "rejected (UNITER asserts). Sidecars: meta.json, id2len.json, txt2img.json, img2txts.json.",
          {{"source", "coco, cc, sbu or vg (required)", false},
           {"image-split", "coco: image folder in the names, e.g. train2014 (default: from the file name)", false},
           {"split", "cc: train or val in the names (default: train if the file name says so, else val)", false}}};
}

}  // namespace uniter::converters
