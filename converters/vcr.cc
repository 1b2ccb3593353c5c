// VCR: the official JSON lines (question / answer_choices / rationale_choices
// as token lists where object references are lists of indices into `objects`)
// → UNITER's vcr txt_db, as the fuller UNITER prepro (process_vcr) writes it:
// Q→A and QA→R in one record, person references as special tokens.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/error.h"
#include "common/rejects.h"
#include "converters/internal/readers.h"
#include "converters/internal/sources.h"
#include "converters/internal/task.h"
#include "featdb/txt_db.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace {

namespace dom = simdjson::dom;

// UNITER reserves 81 extra word ids after the vocab: person_0 .. person_80.
constexpr int kNumPersonTokens = 81;

class VcrTask : public Task {
 public:
  void Prepare(const TaskContext& ctx) override {
    ctx_ = &ctx;
    if (ctx.options->annotations.size() != 1) throw UsageError("vcr takes one --ann (train.jsonl, val.jsonl or test.jsonl)");
    image_split_ = ctx.Flag("image-split", std::filesystem::path(ctx.Annotation(0)).stem().string());
    lines_ = LinesSource(ctx, {0});
  }

  bool Next(Unit* u) override { return lines_.Next(u); }

  void Convert(const Unit& u, std::vector<Example>* out) const override {
    dom::object o = AsObject(ParseJsonThreadLocal(u.text));
    Example ex;
    ex.key = std::string(StrField(o, "annot_id"));
    WithKey(ex.key, [&] {
      const std::string img_fn(StrField(o, "img_fn"));
      std::string stem = std::filesystem::path(img_fn).filename().string();
      stem = stem.substr(0, stem.rfind('.'));
      std::vector<std::string> objects;
      for (dom::element e : ArrayField(o, "objects")) {
        std::string_view s;
        if (e.get_string().get(s)) throw FormatError("an object name is not a string");
        objects.emplace_back(s);
      }
      const int64_t qa_target = Has(o, "answer_label") ? IntField(o, "answer_label") : -1;
      const int64_t qar_target = Has(o, "rationale_label") ? IntField(o, "rationale_label") : -1;

      std::string raw_q;
      const std::vector<int32_t> q_ids = Encode(Field(o, "question"), objects, &raw_q);
      featdb::Value raw_as = featdb::Value::Array(), raw_rs = featdb::Value::Array();
      featdb::Value ids_as = featdb::Value::Array(), ids_rs = featdb::Value::Array();
      size_t max_a = 0, max_r = 0;
      for (dom::element a : ArrayField(o, "answer_choices")) {
        std::string raw;
        const std::vector<int32_t> ids = Encode(a, objects, &raw);
        max_a = std::max(max_a, ids.size());
        raw_as.Append(featdb::Value::Str(raw));
        ids_as.Append(featdb::Value::IntList(ids));
      }
      for (dom::element r : ArrayField(o, "rationale_choices")) {
        std::string raw;
        const std::vector<int32_t> ids = Encode(r, objects, &raw);
        max_r = std::max(max_r, ids.size());
        raw_rs.Append(featdb::Value::Str(raw));
        ids_rs.Append(featdb::Value::IntList(ids));
      }
      if (qa_target >= static_cast<int64_t>(ids_as.as_array().size()) ||
          qar_target >= static_cast<int64_t>(ids_rs.as_array().size()))
        throw FormatError("answer_label or rationale_label out of range");

      const std::string gt = "vcr_gt_" + image_split_ + "_" + stem + ".npz";
      const std::string det = "vcr_" + image_split_ + "_" + stem + ".npz";
      ex.value = ObjectToMap(o);
      ex.value.Set("image_id", featdb::Value::Str(stem));
      ex.value.Set("qa_target", featdb::Value(qa_target));
      ex.value.Set("qar_target", featdb::Value(qar_target));
      ex.value.Set("raw_q", featdb::Value::Str(raw_q));
      ex.value.Set("input_ids", featdb::Value::IntList(q_ids));
      ex.value.Set("raw_as", raw_as);
      ex.value.Set("raw_rs", raw_rs);
      ex.value.Set("img_fname", featdb::Value::Array({featdb::Value::Str(gt), featdb::Value::Str(det)}));
      ex.value.Set("input_ids_as", ids_as);
      ex.value.Set("input_ids_rs", ids_rs);
      ex.img_fnames = {gt, det};
      ex.img_list = true;
      // UNITER's VCR prepro: id2len_qa = (len(q) + longest answer) * 4,
      // id2len_qar = that + longest rationale.
      const int64_t qa = static_cast<int64_t>((q_ids.size() + max_a) * 4);
      ex.lens = {{"id2len", static_cast<int64_t>(q_ids.size())},
                 {"id2len_qa", qa},
                 {"id2len_qar", qa + static_cast<int64_t>(max_r)}};
    });
    out->push_back(std::move(ex));
  }

  nlohmann::json MetaOptions(const std::string&) const override {
    nlohmann::json j;
    j["image_split"] = image_split_;
    j["num_special_tokens"] = kNumPersonTokens;
    return j;
  }

  void Finish(const std::string&, featdb::TxtDbWriter& w, RejectsFile&) override {
    nlohmann::json specials = nlohmann::json::array();
    for (int i = 0; i < kNumPersonTokens; ++i) specials.push_back("person_" + std::to_string(i));
    w.WriteJson("special_tokens.json", specials);
  }

 private:
  // A VCR token list → words (object references become their class name,
  // persons person_<i>) → ids; person_<i> is vocab size + i.
  std::vector<int32_t> Encode(dom::element tokens, const std::vector<std::string>& objects, std::string* raw) const {
    std::vector<std::string> words;
    for (dom::element t : AsArray(tokens, "a question/answer/rationale")) {
      std::string_view s;
      if (!t.get_string().get(s)) {
        words.emplace_back(s);
        continue;
      }
      for (dom::element idx : AsArray(t, "an object reference")) {
        int64_t i;
        if (idx.get_int64().get(i) || i < 0 || i >= static_cast<int64_t>(objects.size()))
          throw FormatError("object reference out of range of 'objects'");
        std::string name = objects[i];
        if (name.find("person") != std::string::npos) {
          if (i >= kNumPersonTokens)
            throw FormatError("person index " + std::to_string(i) + " beyond UNITER's 81 person tokens");
          name.push_back('_');
          name.append(std::to_string(i));
        }
        words.push_back(std::move(name));
      }
    }
    raw->clear();
    for (size_t k = 0; k < words.size(); ++k) {
      if (k) raw->push_back(' ');
      raw->append(words[k]);
    }
    const int32_t vocab = static_cast<int32_t>(ctx_->toker->VocabSize());
    std::vector<int32_t> ids;
    // Word by word on whitespace, as UNITER's bert_tokenize_for_vcr.
    size_t p = 0;
    while (p < raw->size()) {
      while (p < raw->size() && std::isspace(static_cast<unsigned char>((*raw)[p]))) ++p;
      size_t e = p;
      while (e < raw->size() && !std::isspace(static_cast<unsigned char>((*raw)[e]))) ++e;
      if (e == p) break;
      const std::string_view w(raw->data() + p, e - p);
      int person = -1;
      if (w.size() > 7 && w.substr(0, 7) == "person_" && w.find_first_not_of("0123456789", 7) == std::string_view::npos)
        person = static_cast<int>(std::min<int64_t>(ParseInt(w.substr(7), "person index"), kNumPersonTokens));
      if (person >= 0 && person < kNumPersonTokens) {
        ids.push_back(vocab + person);
      } else {
        const std::vector<int32_t> sub = ctx_->toker->Encode(w);
        ids.insert(ids.end(), sub.begin(), sub.end());
      }
      p = e;
    }
    return ids;
  }

  std::string image_split_;
  LinesSource lines_;
};

}  // namespace

std::unique_ptr<Task> MakeVcrTask() { return std::make_unique<VcrTask>(); }

TaskInfo VcrTaskInfo() {
  return {"vcr", "VCR JSON lines -> vcr txt_db (Q->A and QA->R)",
          "Inputs: --ann train.jsonl, val.jsonl or test.jsonl (question, answer_choices, rationale_choices\n"
          "as token lists with object-index lists; objects, answer_label, rationale_label, img_fn,\n"
          "metadata_fn, annot_id).\n"
          "Object references become the object's class name; persons become person_<i>, the special word\n"
          "id <vocab size + i> (81 of them, as UNITER's VCR models add).\n"
          "Output: one txt_db at --output. Key = annot_id. Record = every original field plus image_id,\n"
          "qa_target / qar_target (-1 on test), raw_q, raw_as, raw_rs, input_ids (question),\n"
          "input_ids_as [4], input_ids_rs [4], img_fname [vcr_gt_<split>_<stem>.npz, vcr_<split>_<stem>.npz].\n"
          "Sidecars: meta.json, id2len_qa.json, id2len_qar.json (the lengths UNITER's VCR loader reads),\n"
          "id2len.json (question length), txt2img.json ([gt, det]), img2txts.json, special_tokens.json.",
          {{"image-split", "split in the feature names (default: the --ann file stem, e.g. val)", false}}};
}

}  // namespace uniter::converters
