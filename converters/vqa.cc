// VQA v2: questions + annotations JSON → UNITER's vqa txt_db, as the fuller
// UNITER prepro (process_vqa, utils/vqa.py compute_target) writes it, with the
// official evaluation's answer normalisation and soft scores.
#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "common/error.h"
#include "common/rejects.h"
#include "converters/internal/readers.h"
#include "converters/internal/sources.h"
#include "converters/internal/task.h"
#include "converters/vqa_answer.h"
#include "featdb/txt_db.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace {

namespace dom = simdjson::dom;

// Image split from the questions file name, as UNITER's _get_img_split does.
std::string DetectImageSplit(const std::string& path) {
  std::string lower;
  for (char c : path) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (const char* s : {"train2014", "val2014", "test2015", "test-dev2015"})
    if (lower.find(s) != std::string::npos) return std::string(s) == "test-dev2015" ? "test2015" : s;
  if (lower.find("vg") != std::string::npos || lower.find("genome") != std::string::npos) return "vg";
  if (lower.find("val") != std::string::npos) return "val2014";
  if (lower.find("train") != std::string::npos) return "train2014";
  throw UsageError("cannot tell the image split from '" + path + "': give --image-split (e.g. train2014)");
}

class VqaTask : public Task {
 public:
  void Prepare(const TaskContext& ctx) override {
    ctx_ = &ctx;
    const auto& anns = ctx.options->annotations;
    if (anns.size() > 2) throw UsageError("vqa takes --ann QUESTIONS [--ann ANNOTATIONS]");
    image_split_ = ctx.Flag("image-split", "");
    if (image_split_.empty()) image_split_ = DetectImageSplit(anns[0]);
    questions_ = LoadJsonDocument(anns[0]);
    if (questions_.root.is_array()) {  // Visual Genome question_answers.json
      PrepareVisualGenome(anns);
      return;
    }
    dom::object qroot = AsObject(questions_.root, anns[0]);
    dom::array qs;
    if (qroot["questions"].get_array().get(qs)) throw FormatError("no 'questions' list", anns[0]);
    source_.Add(0, qs);

    if (anns.size() == 2) {
      answers_ = LoadJsonDocument(anns[1]);
      dom::array as;
      if (AsObject(answers_.root, anns[1])["annotations"].get_array().get(as))
        throw FormatError("no 'annotations' list", anns[1]);
      size_t i = 0;
      for (dom::element a : as) {
        int64_t qid;
        if (a["question_id"].get_int64().get(qid))
          throw FormatError("annotation " + std::to_string(i) + " has no integer question_id", anns[1]);
        by_qid_.emplace(qid, a);
        ++i;
      }
      LoadAns2Label(as);
    } else if (!ctx.Flag("ans2label").empty()) {
      LoadAns2Label({});
    }
  }

  bool Next(Unit* u) override { return source_.Next(u); }

  void Convert(const Unit& u, std::vector<Example>* out) const override {
    if (visual_genome_) return ConvertVisualGenome(u, out);
    dom::object q = AsObject(u.elem, "question");
    const int64_t qid = IntField(q, "question_id");
    Example ex;
    ex.key = std::to_string(qid);
    WithKey(ex.key, [&] {
      const int64_t image_id = IntField(q, "image_id");
      StartExample(q, image_id, &ex);
      if (!by_qid_.empty()) {
        auto it = by_qid_.find(qid);
        if (it == by_qid_.end()) throw FormatError("no annotation for this question");
        dom::object a = AsObject(it->second, "annotation");
        if (IntField(a, "image_id") != image_id) throw FormatError("annotation image_id differs from the question's");
        for (auto [k, v] : a) ex.value.Set(std::string(k), ToValue(v));
        std::vector<std::string_view> answers;
        for (dom::element x : ArrayField(a, "answers")) answers.push_back(StrField(AsObject(x, "answer"), "answer"));
        ex.value.Set("target", Target(answers));
      }
    });
    out->push_back(std::move(ex));
  }

  nlohmann::json MetaOptions(const std::string&) const override {
    nlohmann::json j;
    j["image_split"] = image_split_;
    j["ans2label"] = ans2label_source_;
    j["num_answers"] = ans2label_.size();
    return j;
  }

  void Finish(const std::string&, featdb::TxtDbWriter& w, RejectsFile&) override {
    if (ans2label_.empty()) return;
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [a, l] : ans2label_) j[a] = l;
    w.WriteJson("ans2label.json", j);
  }

 private:
  // {labels, scores}: each distinct normalised answer in ans2label, in order of
  // first appearance, scored by how many annotators gave it (a single answer,
  // as in VG QA, counts as 10).
  featdb::Value Target(const std::vector<std::string_view>& answers) const {
    std::vector<std::pair<std::string, int>> counts;
    const size_t n = answers.size();
    for (std::string_view a : answers) {
      std::string norm = NormalizeVqaAnswer(a);
      auto it = std::find_if(counts.begin(), counts.end(), [&](auto& c) { return c.first == norm; });
      if (it == counts.end()) counts.emplace_back(std::move(norm), n == 1 ? 10 : 1);
      else ++it->second;
    }
    featdb::Value labels = featdb::Value::Array(), scores = featdb::Value::Array();
    for (const auto& [a, c] : counts) {
      auto l = ans2label_.find(a);
      if (l == ans2label_.end()) continue;
      labels.Append(featdb::Value(static_cast<int64_t>(l->second)));
      scores.Append(featdb::Value(VqaScore(c)));
    }
    featdb::Value t = featdb::Value::Map();
    t.Set("labels", labels);
    t.Set("scores", scores);
    return t;
  }

  // --ans2label FILE, or built from these annotations: every normalised
  // multiple_choice_answer given for at least --min-answer-count questions.
  void LoadAns2Label(dom::array annotations) {
    const std::string path = ctx_->Flag("ans2label");
    if (!path.empty()) {
      JsonDocument doc = LoadJsonDocument(path);
      dom::object o = AsObject(doc.root, path);
      for (auto [k, v] : o) {
        int64_t l;
        if (v.get_int64().get(l)) throw FormatError("label of '" + std::string(k) + "' is not an int", path);
        ans2label_.emplace(std::string(k), l);
      }
      ans2label_source_ = path;
      return;
    }
    const std::string min_s = ctx_->Flag("min-answer-count", "9");
    const int64_t min_count = ParseInt(min_s, "--min-answer-count");
    std::vector<std::string> order;
    std::unordered_map<std::string, std::unordered_map<int64_t, bool>> seen;
    for (dom::element a : annotations) {
      std::string_view gt;
      if (a["multiple_choice_answer"].get_string().get(gt)) {
        dom::array as;
        if (a["answers"].get_array().get(as) || as.size() == 0) continue;
        if (as.at(0)["answer"].get_string().get(gt)) continue;
      }
      std::string norm = NormalizeVqaAnswer(gt);
      int64_t qid = 0;
      if (a["question_id"].get_int64().get(qid)) continue;
      auto [it, fresh] = seen.try_emplace(norm);
      if (fresh) order.push_back(norm);
      it->second[qid] = true;
    }
    for (const auto& a : order)
      if (static_cast<int64_t>(seen[a].size()) >= min_count) ans2label_.emplace(a, static_cast<int64_t>(ans2label_.size()));
    ans2label_source_ = "built from " + ctx_->Annotation(1) + " (answers of >= " + min_s + " questions)";
  }

  // The record's original fields, input_ids, img_fname and the sidecar entries.
  void StartExample(dom::object q, int64_t image_id, Example* ex) const {
    const std::vector<int32_t> ids = ctx_->toker->Encode(StrField(q, "question"));
    const std::string img = image_split_ == "vg" ? "vg_" + Pad12(image_id) + ".npz"
                                                  : "coco_" + image_split_ + "_" + Pad12(image_id) + ".npz";
    ex->value = ObjectToMap(q);
    ex->value.Set("input_ids", featdb::Value::IntList(ids));
    ex->value.Set("img_fname", featdb::Value::Str(img));
    ex->img_fnames = {img};
    ex->lens.emplace_back("id2len", static_cast<int64_t>(ids.size()));
  }

  // Visual Genome's question_answers.json: [{"id": image, "qas": [{qa_id,
  // image_id, question, answer, q_objects, a_objects}]}], one answer each.
  void PrepareVisualGenome(const std::vector<std::string>& anns) {
    if (anns.size() != 1) throw UsageError("vqa with Visual Genome's question_answers.json takes that one --ann");
    visual_genome_ = true;
    if (ctx_->Flag("image-split").empty()) image_split_ = "vg";
    size_t i = 0;
    std::vector<std::string_view> answers;
    dom::array images;
    if (questions_.root.get_array().get(images)) throw FormatError("expected a list of images", anns[0]);
    for (dom::element img : images) {
      dom::array qas;
      if (img["qas"].get_array().get(qas))
        throw FormatError("image " + std::to_string(i) + " has no 'qas' list", anns[0]);
      source_.Add(0, qas);
      for (dom::element qa : qas) {
        std::string_view a;
        if (!qa["answer"].get_string().get(a)) answers.push_back(a);
      }
      ++i;
    }
    if (!ctx_->Flag("ans2label").empty()) {
      LoadAns2Label({});
    } else {  // answers of at least --min-answer-count questions, first-seen order
      const std::string min_s = ctx_->Flag("min-answer-count", "9");
      const int64_t min_count = ParseInt(min_s, "--min-answer-count");
      std::vector<std::string> order;
      std::unordered_map<std::string, int64_t> count;
      for (std::string_view a : answers) {
        std::string norm = NormalizeVqaAnswer(a);
        if (count[norm]++ == 0) order.push_back(std::move(norm));
      }
      for (const auto& a : order)
        if (count[a] >= min_count) ans2label_.emplace(a, static_cast<int64_t>(ans2label_.size()));
      ans2label_source_ = "built from " + anns[0] + " (answers of >= " + min_s + " questions)";
    }
  }

  void ConvertVisualGenome(const Unit& u, std::vector<Example>* out) const {
    dom::object qa = AsObject(u.elem, "qa");
    Example ex;
    ex.key = std::to_string(IntField(qa, "qa_id"));
    WithKey(ex.key, [&] {
      StartExample(qa, IntField(qa, "image_id"), &ex);
      ex.value.Set("target", Target({StrField(qa, "answer")}));
    });
    out->push_back(std::move(ex));
  }

  bool visual_genome_ = false;
  std::string image_split_;
  JsonDocument questions_, answers_;
  ElementsSource source_;
  std::unordered_map<int64_t, dom::element> by_qid_;
  std::unordered_map<std::string, int64_t> ans2label_;
  std::string ans2label_source_;
};

}  // namespace

std::unique_ptr<Task> MakeVqaTask() { return std::make_unique<VqaTask>(); }

TaskInfo VqaTaskInfo() {
  return {"vqa", "VQA v2 questions (+ annotations) JSON -> vqa txt_db",
          "Inputs: --ann v2_OpenEnded_mscoco_<split>_questions.json [--ann v2_mscoco_<split>_annotations.json]\n"
          "(annotations are left out for test), or Visual Genome's question_answers.json alone (UNITER's\n"
          "extra VQA training data: key = str(qa_id), img_fname vg_<image_id:012>.npz, its one answer scored\n"
          "as if all 10 annotators gave it). Answers are looked up in --ans2label FILE (a JSON\n"
          "{answer: label}, e.g. UNITER's 3,129 answers) or, without it, in a table built from the given\n"
          "annotations: answers of at least --min-answer-count questions (default 9).\n"
          "Output: one txt_db at --output. Key = str(question_id). Record = the question's fields, the\n"
          "annotation's fields, input_ids, img_fname coco_<image split>_<image_id:012>.npz (vg_<id:012>.npz\n"
          "for --image-split vg) and target {labels, scores}: answers normalised as the official VQA\n"
          "evaluation does, scored 0.3/0.6/0.9/1.0 for 1/2/3/4+ of the 10 annotators.\n"
          "Sidecars: meta.json, id2len.json, txt2img.json, img2txts.json, ans2label.json.",
          {{"ans2label", "JSON {answer: label} (UNITER's ans2label.json)", false},
           {"min-answer-count", "without --ans2label: keep answers given for >= N questions (default 9)", false},
           {"image-split", "image split of the feature names: train2014, val2014, test2015 or vg "
                           "(default: from the questions file name)", false}}};
}

}  // namespace uniter::converters
