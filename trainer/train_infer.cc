// inf_nlvr2.py: the model in eval mode under no_grad over the examples in the
// db's order, `identifier,True|False` per example (class 1 = True).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "featdb/array.h"
#include "featdb/npy.h"
#include "trainer/data/datasets.h"
#include "trainer/data/internal/loader.h"
#include "trainer/internal/task_model.h"
#include "trainer/train.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;

void WriteFileAtomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << data;
    if (!out.flush()) throw IoError("cannot write", tmp);
  }
  fs::rename(tmp, path);
}

}  // namespace

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
}

InferResult InferNlvr2(const InferOptions& o, const RunOptions& run) {
  if (o.batch_size <= 0) throw UsageError("batch_size must be positive");
  data::ImgDbOptions io;
  io.conf_th = o.conf_th;
  io.max_bb = o.max_bb;
  io.min_bb = o.min_bb;
  io.num_bb = o.num_bb;
  io.compressed_db = o.compressed_db;
  data::DatasetOptions dopt;
  dopt.task = o.model == "triplet" ? data::Task::kNlvr2Triplet : data::Task::kNlvr2Paired;
  dopt.use_img_type = o.use_img_type;
  auto txt = std::make_shared<const data::TxtTokDb>(o.txt_db, -1);
  auto img = std::make_shared<const data::ImgFeatDb>(o.img_db, io);
  auto dataset = std::make_shared<const data::TaskDataset>(std::vector<data::DbPair>{{txt, img}}, dopt);

  TaskOptions to;
  to.task = TaskKind::kNlvr2;
  to.nlvr2_model = o.model;
  Model model(UniterConfig::FromJsonFile(o.model_config), to, 0);
  model.Load(o.checkpoint);
  TaskModelImpl& m = model.module();
  m.eval();

  std::vector<std::vector<int64_t>> batches;
  for (int64_t i = 0; i < dataset->size(); i += o.batch_size) {
    batches.emplace_back(std::min(o.batch_size, dataset->size() - i));
    std::iota(batches.back().begin(), batches.back().end(), i);
  }
  data::LoaderOptions lo;
  lo.num_threads = std::max(1, o.n_workers);
  data::PrefetchLoader loader(dataset, std::move(batches), lo);
  std::string csv;
  std::vector<float> logits;
  {
    torch::NoGradGuard no_grad;
    while (auto batch = loader.Next()) {
      const at::Tensor scores = m.Scores(*batch).to(at::kFloat).contiguous();
      const at::Tensor pred = scores.argmax(-1);
      const auto* p = pred.data_ptr<int64_t>();
      for (size_t i = 0; i < batch->qids.size(); ++i) csv += batch->qids[i] + (p[i] == 1 ? ",True\n" : ",False\n");
      logits.insert(logits.end(), scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
    }
  }
  fs::create_directories(o.output_dir);
  InferResult r;
  r.examples = dataset->size();
  r.results = o.output_dir + "/results.csv";
  WriteFileAtomically(r.results, csv);
  if (!o.save_logits.empty())
    WriteFileAtomically(o.save_logits,
                        featdb::WriteNpy(featdb::Array::FromFloat32("logits", {r.examples, 2}, logits)));
  if (!run.quiet) std::fprintf(stderr, "infer: %lld examples -> %s\n", static_cast<long long>(r.examples), r.results.c_str());
  return r;
}

}  // namespace uniter::trainer
