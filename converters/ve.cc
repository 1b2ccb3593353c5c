// SNLI-VE: JSON lines → UNITER's ve txt_db, as the fuller UNITER prepro
// (process_visual_entailment) writes it; labels as UNITER's VE dataset expects.
#include "converters/internal/readers.h"
#include "converters/internal/sources.h"
#include "converters/internal/task.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace {

// UNITER's utils/misc.py VE_ENT2IDX.
int VeLabel(std::string_view l) {
  if (l == "contradiction") return 0;
  if (l == "entailment") return 1;
  if (l == "neutral") return 2;
  return -1;
}

class VeTask : public Task {
 public:
  void Prepare(const TaskContext& ctx) override {
    ctx_ = &ctx;
    std::vector<uint32_t> files;
    for (uint32_t i = 0; i < ctx.options->annotations.size(); ++i) files.push_back(i);
    lines_ = LinesSource(ctx, files);
  }

  bool Next(Unit* u) override { return lines_.Next(u); }

  void Convert(const Unit& u, std::vector<Example>* out) const override {
    simdjson::dom::object o = AsObject(ParseJsonThreadLocal(u.text));
    Example ex;
    ex.key = std::string(StrField(o, "pairID"));
    WithKey(ex.key, [&] {
      // The SNLI-VE release spells it Flikr30kID; later copies Flickr30K_ID.
      std::string_view image;
      if (Has(o, "Flikr30kID")) image = StrField(o, "Flikr30kID");
      else if (Has(o, "Flickr30K_ID")) image = StrField(o, "Flickr30K_ID");
      else throw FormatError("missing field 'Flikr30kID' (or 'Flickr30K_ID')");
      const std::string stem(image.substr(0, image.find('.')));
      if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos)
        throw FormatError("image '" + std::string(image) + "' is not <flickr id>.jpg");
      const int64_t image_id = ParseInt(stem, "flickr id");
      const std::string_view gold = StrField(o, "gold_label");
      const int label = VeLabel(gold);
      if (label < 0) throw FormatError("unknown label '" + std::string(gold) + "'");
      const std::vector<int32_t> ids = ctx_->toker->Encode(StrField(o, "sentence2"));
      const std::string img = "flickr30k_" + Pad12(image_id) + ".npz";
      ex.value = ObjectToMap(o);
      ex.value.Set("image_id", featdb::Value(image_id));
      ex.value.Set("input_ids", featdb::Value::IntList(ids));
      featdb::Value target = featdb::Value::Map();
      target.Set("labels", featdb::Value::Array({featdb::Value(label)}));
      target.Set("scores", featdb::Value::Array({featdb::Value(1.0)}));
      ex.value.Set("target", target);
      ex.value.Set("img_fname", featdb::Value::Str(img));
      ex.img_fnames = {img};
      ex.lens.emplace_back("id2len", static_cast<int64_t>(ids.size()));
    });
    out->push_back(std::move(ex));
  }

 private:
  LinesSource lines_;
};

}  // namespace

std::unique_ptr<Task> MakeVeTask() { return std::make_unique<VeTask>(); }

TaskInfo VeTaskInfo() {
  return {"ve", "SNLI-VE JSON lines -> ve txt_db",
          "Inputs: --ann snli_ve_<split>.jsonl (pairID, Flikr30kID or Flickr30K_ID, sentence2, gold_label).\n"
          "Output: one txt_db at --output. Key = pairID. Record = every original field plus image_id,\n"
          "input_ids (of sentence2, the hypothesis), target {labels: [l], scores: [1.0]} with\n"
          "contradiction 0, entailment 1, neutral 2 (UNITER's VE_ENT2IDX), and img_fname\n"
          "flickr30k_<flickr id:012>.npz.\n"
          "Sidecars: meta.json, id2len.json, txt2img.json, img2txts.json.",
          {}};
}

}  // namespace uniter::converters
