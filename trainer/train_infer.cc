// inf_nlvr2.py / inf_vqa.py (and the same for VE): the model in eval mode
// under no_grad over the examples in the db's order, the argmax per example
// written as UNITER's results file.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "featdb/array.h"
#include "featdb/npy.h"
#include "trainer/answers.h"
#include "trainer/data/datasets.h"
#include "trainer/data/internal/loader.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/itm_run.h"
#include "trainer/internal/re_vcr_loop.h"
#include "trainer/internal/task_model.h"
#include "trainer/train.h"

namespace uniter::trainer {

namespace fs = std::filesystem;

void ApplyTrainConfig(const std::string& config_json, const std::string& where, InferOptions* o) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(config_json);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), where);
  }
  auto read = [&](const char* key, auto* out) {
    if (!j.contains(key) || j[key].is_null()) return;
    try {
      *out = j[key].get<std::decay_t<decltype(*out)>>();
    } catch (const nlohmann::json::exception&) {
      throw FormatError(std::string("key '") + key + "' has the wrong type", where);
    }
  };
  read("model", &o->model);
  read("use_img_type", &o->use_img_type);
  read("conf_th", &o->conf_th);
  read("max_bb", &o->max_bb);
  read("min_bb", &o->min_bb);
  read("num_bb", &o->num_bb);
  read("compressed_db", &o->compressed_db);
  read("ans2label", &o->ans2label);
  read("mlp", &o->mlp);
  read("fp16", &o->fp16);
  read("amp_dtype", &o->amp_dtype);
}

void ApplyTrainDir(TaskKind task, const std::string& train_dir, int64_t ckpt, InferOptions* o) {
  const fs::path dir(train_dir);
  auto need = [&](const fs::path& p, const char* what) {
    if (!fs::is_regular_file(p))
      throw UsageError(std::string("--train_dir has no ") + what + " (" + p.string() + ")");
    return p.string();
  };
  const std::string hps = need(dir / "log" / "hps.json", "log/hps.json: not a training output_dir");
  o->model_config = need(dir / "log" / "model.json", "log/model.json");
  // train_re.py saves per epoch (model_epoch_N.pt), the others per step.
  const std::string stem = task == TaskKind::kRe ? "model_epoch_" : "model_step_";
  o->checkpoint = need(dir / "ckpt" / (stem + std::to_string(ckpt) + ".pt"), "checkpoint for --ckpt");
  std::ifstream in(hps, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  ApplyTrainConfig(text.str(), hps, o);
  const fs::path answers = dir / "ckpt" / "ans2label.json";
  if (task == TaskKind::kVqa && fs::is_regular_file(answers)) o->ans2label = answers.string();
}

namespace {

// inf_vqa.py names its output after the checkpoint step: model_step_N.pt → N,
// any other file → its stem.
std::string CheckpointTag(const std::string& checkpoint) {
  const std::string stem = fs::path(checkpoint).stem().string();
  const std::string prefix = "model_step_";
  return stem.rfind(prefix, 0) == 0 && stem.size() > prefix.size() ? stem.substr(prefix.size()) : stem;
}

int64_t QuestionId(const std::string& qid, const std::string& txt_db) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(qid, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != qid.size())
    throw FormatError("VQA example id is not an integer question_id", txt_db + "[" + qid + "]");
  return v;
}

// The task's results file, rows in db order: NLVR2 results.csv
// (identifier,True|False), VQA results_test/results_{ckpt}_all.json
// ([{answer, question_id}]), VE results.json ({pairID: label}).
class ResultsWriter {
 public:
  ResultsWriter(TaskKind task, const InferOptions& o, std::vector<std::string> label2ans)
      : task_(task), o_(o), label2ans_(std::move(label2ans)) {}

  void Add(const std::string& id, int64_t pred) {
    if (task_ == TaskKind::kNlvr2) {
      csv_ += id + (pred == 1 ? ",True\n" : ",False\n");
    } else if (task_ == TaskKind::kVe) {
      ve_[id] = VeLabels().at(pred);
    } else {
      const std::string answer = pred < static_cast<int64_t>(label2ans_.size()) ? label2ans_[pred] : std::to_string(pred);
      vqa_.push_back({{"answer", answer}, {"question_id", QuestionId(id, o_.txt_db)}});
    }
  }

  // Writes the file; returns its path.
  std::string Write() const {
    if (task_ == TaskKind::kNlvr2) {
      const std::string path = o_.output_dir + "/results.csv";
      WriteFileAtomic(path, csv_);
      return path;
    }
    if (task_ == TaskKind::kVe) {
      const std::string path = o_.output_dir + "/results.json";
      WriteFileAtomic(path, ve_.dump());
      return path;
    }
    fs::create_directories(o_.output_dir + "/results_test");
    const std::string path = o_.output_dir + "/results_test/results_" + CheckpointTag(o_.checkpoint) + "_all.json";
    WriteFileAtomic(path, vqa_.dump());
    return path;
  }

 private:
  TaskKind task_;
  const InferOptions& o_;
  std::vector<std::string> label2ans_;
  std::string csv_;
  nlohmann::ordered_json ve_ = nlohmann::ordered_json::object();
  nlohmann::json vqa_ = nlohmann::json::array();
};

}  // namespace

InferResult Infer(TaskKind task, const InferOptions& o, const RunOptions& run) {
  if (task == TaskKind::kItm) return InferItm(o, run);
  if (task == TaskKind::kRe) return InferRe(o, run);
  if (task == TaskKind::kVcr) return InferVcr(o, run);
  if (o.batch_size <= 0) throw UsageError("batch_size must be positive");
  const InferPlacement place = ResolveInferPlacement(o.device, o.fp16, o.amp_dtype);
  const data::ImgDbOptions io = data::ImgDbOptionsOf(o);
  std::vector<std::string> label2ans;
  if (task == TaskKind::kVqa && !o.ans2label.empty()) label2ans = ReadLabel2Ans(o.ans2label);
  TaskOptions to;
  to.task = task;
  to.nlvr2_model = o.model;
  if (task == TaskKind::kVe) to.num_answers = 3;
  if (!label2ans.empty()) to.num_answers = static_cast<int64_t>(label2ans.size());
  data::DatasetOptions dopt;
  dopt.task = data::TaskForModel(task, o.model);
  dopt.use_img_type = o.use_img_type;
  if (task != TaskKind::kNlvr2) dopt.num_answers = to.num_answers;
  auto txt = std::make_shared<const data::TxtTokDb>(o.txt_db, -1);
  auto img = std::make_shared<const data::ImgFeatDb>(o.img_db, io);
  auto dataset = std::make_shared<const data::TaskDataset>(std::vector<data::DbPair>{{txt, img}}, dopt);

  Model model(UniterConfig::FromJsonFile(o.model_config), to, 0);
  try {
    model.Load(o.checkpoint);
  } catch (const FormatError& e) {
    // The likely cause: the head's size follows ans2label, which came from nowhere.
    if (task != TaskKind::kVqa || !o.ans2label.empty()) throw;
    throw FormatError(e.message() + " (no ans2label given: pass the run's --ans2label or --config log/hps.json)",
                      e.where());
  }
  TaskModelImpl& m = model.module();
  m.eval();
  m.to(place.device);
  AnnounceInferPlacement(place, run.quiet);

  std::vector<std::vector<int64_t>> batches;
  for (int64_t i = 0; i < dataset->size(); i += o.batch_size) {
    batches.emplace_back(std::min(o.batch_size, dataset->size() - i));
    std::iota(batches.back().begin(), batches.back().end(), i);
  }
  data::LoaderOptions lo;
  lo.num_threads = std::max(1, o.n_workers);
  data::PrefetchLoader loader(dataset, std::move(batches), lo);
  ResultsWriter results(task, o, std::move(label2ans));
  std::vector<float> logits;
  int64_t classes = task == TaskKind::kNlvr2 ? 2 : to.num_answers;
  {
    torch::NoGradGuard no_grad;
    while (auto batch = loader.Next()) {
      const at::Tensor scores = InferScores(m, *batch, place);
      classes = scores.size(1);
      const at::Tensor pred = scores.argmax(-1);
      const auto* p = pred.data_ptr<int64_t>();
      for (size_t i = 0; i < batch->qids.size(); ++i) results.Add(batch->qids[i], p[i]);
      logits.insert(logits.end(), scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
    }
  }
  fs::create_directories(o.output_dir);
  InferResult r;
  r.examples = dataset->size();
  r.results = results.Write();
  if (!o.save_logits.empty())
    WriteFileAtomic(o.save_logits, featdb::WriteNpy(featdb::Array::FromFloat32(
                                           "logits", {r.examples, classes}, logits)));
  if (!run.quiet) std::fprintf(stderr, "infer: %lld examples -> %s\n", static_cast<long long>(r.examples), r.results.c_str());
  return r;
}

}  // namespace uniter::trainer
