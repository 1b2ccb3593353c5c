// NLVR2: the official JSON lines (identifier, sentence, label "True"/"False",
// ...) → UNITER's nlvr2 txt_db, as UNITER's prepro.py `process_nlvr2` writes it.
#include "converters/internal/json_msgpack.h"
#include "converters/internal/readers.h"
#include "converters/internal/sources.h"
#include "converters/internal/task.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace {

class Nlvr2Task : public Task {
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
    const std::string id(StrField(o, "identifier"));
    WithKey(id, [&] {
      // "dev-850-0-0" → images of pair "dev-850-0".
      const size_t dash = id.rfind('-');
      if (dash == std::string::npos || dash == 0) throw FormatError("identifier has no '-<n>' suffix");
      const std::string pair = id.substr(0, dash);
      Example ex;
      ex.key = id;
      ex.img_fnames = {"nlvr2_" + pair + "-img0.npz", "nlvr2_" + pair + "-img1.npz"};
      ex.img_list = true;
      int target = -1;  // nil: unlabeled (hidden test)
      if (Has(o, "label")) {
        const std::string_view label = StrField(o, "label");
        if (label == "True") target = 1;
        else if (label == "False") target = 0;
        else throw FormatError("unknown label '" + std::string(label) + "' (want \"True\" or \"False\")");
      }
      const std::vector<int32_t> ids = ctx_->toker->Encode(StrField(o, "sentence"));
      // UNITER keeps every original field and adds these three. Written as
      // msgpack straight from the parsed line; a record the direct path cannot
      // write exactly (repeated keys, an added key already present) goes
      // through featdb::Value.
      std::string& raw = MsgpackScratch();
      featdb::MsgpackWriter w(&raw);
      if (BeginRecordWithOriginal(o, {"input_ids", "img_fname", "target"}, w)) {
        w.Str("input_ids");
        w.IntList(ids);
        w.Str("img_fname");
        w.ArrayHeader(2);
        w.Str(ex.img_fnames[0]);
        w.Str(ex.img_fnames[1]);
        w.Str("target");
        if (target < 0) w.Nil();
        else w.Int(target);
        ex.encoded = featdb::Lz4FrameCompress(raw);
      } else {
        ex.value = ObjectToMap(o);
        ex.value.Set("input_ids", featdb::Value::IntList(ids));
        ex.value.Set("img_fname", featdb::Value::Array({featdb::Value::Str(ex.img_fnames[0]),
                                                        featdb::Value::Str(ex.img_fnames[1])}));
        ex.value.Set("target", target < 0 ? featdb::Value() : featdb::Value(target));
      }
      ex.lens.emplace_back("id2len", static_cast<int64_t>(ids.size()));
      out->push_back(std::move(ex));
    });
  }

 private:
  LinesSource lines_;
};

}  // namespace

std::unique_ptr<Task> MakeNlvr2Task() { return std::make_unique<Nlvr2Task>(); }

TaskInfo Nlvr2TaskInfo() {
  return {"nlvr2", "NLVR2 JSON lines -> nlvr2 txt_db",
          "Inputs: --ann FILE, the official NLVR2 JSON lines (train.json, dev.json, test1.json); several\n"
          "files go into one db.\n"
          "Each line: identifier, sentence, label (\"True\"/\"False\"; absent on unlabeled test).\n"
          "Output: one txt_db at --output. Key = identifier. Record = every original field plus\n"
          "input_ids, img_fname [nlvr2_<pair>-img0.npz, nlvr2_<pair>-img1.npz] (pair = identifier\n"
          "without its last -field) and target (1 for True, 0 for False, nil when unlabeled).\n"
          "Sidecars: meta.json, id2len.json, txt2img.json (key -> [img0, img1]), img2txts.json.",
          {}};
}

}  // namespace uniter::converters
