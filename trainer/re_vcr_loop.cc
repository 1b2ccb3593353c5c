// The RE and VCR finetuning and inference loops (train_re.py, inf_re.py,
// train_vcr.py, inf_vcr.py). Batches are loaded on the calling thread. A run
// resumes from the training state saved with each checkpoint (RE: at each
// epoch's end; VCR: every valid_steps), trainer/internal/task_state.h.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/nn/modules/dropout.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "featdb/array.h"
#include "featdb/npy.h"
#include "trainer/data/internal/re_vcr.h"
#include "trainer/data/token_bucket_sampler.h"
#include "trainer/dist.h"
#include "trainer/internal/batch_dump.h"
#include "trainer/internal/dist_group.h"
#include "trainer/internal/task_state.h"
#include "trainer/internal/train_step.h"
#include "trainer/internal/re_rank.h"
#include "trainer/internal/re_vcr_loop.h"
#include "trainer/internal/running_meter.h"
#include "trainer/internal/task_model.h"
#include "trainer/optim/internal/adamw.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/re_vcr_eval.h"
#include "trainer/tensorboard.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using Metrics = std::vector<std::pair<std::string, double>>;


// The last path component, trailing '/' ignored (UNITER's split('/')[-1]).
std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return fs::path(path).filename().string();
}

// inf_*.py's checkpoint tag: model_epoch_N.pt / model_step_N.pt → N, else the stem.
std::string CheckpointTag(const std::string& checkpoint) {
  const std::string stem = fs::path(checkpoint).stem().string();
  for (const std::string prefix : {"model_epoch_", "model_step_"})
    if (stem.rfind(prefix, 0) == 0 && stem.size() > prefix.size()) return stem.substr(prefix.size());
  return stem;
}

// The pieces train_re.py and train_vcr.py share: model, AdamW with the head
// groups, the update, logs. Under torchrun the loops hand each rank its share
// of the batches (batch k is rank k % W's, an equal number each); Step
// all-reduces the gradients at the update (grad_reduce); every rank
// validates on the whole split and rank 0 writes.
class Run {
 public:
  Run(TaskKind task, const TrainOptions& o, const RunOptions& run, const DistEnv& env)
      : task_(task), o_(o), run_(run), rank_(env.rank), world_(env.world_size),
        rank_loss_(task == TaskKind::kRe && o.train_loss == "rank") {
    if (rank_ != 0) run_.quiet = true;  // rank 0 speaks for the run
    dump_ = BatchDumper(run.dump_batches_dir, rank_ == 0 ? run.dump_batches : 0);
    dist_ = DistGroup::Create(env, false, std::chrono::seconds(run_.dist_timeout_s));
  }

  // Checks output_dir (absent, empty, or holding a state to resume), builds
  // the model (seeded, checkpoint loaded) and optimizer, restores the state;
  // nothing is written yet.
  void Prepare() {
    model_json_ = ReadWholeFile(o_.model_config);
    resume_ = StateToResume(o_.output_dir, o_.hps_json, model_json_);
    config_ = UniterConfig::FromJsonFile(o_.model_config);
    at::manual_seed(o_.seed);
    rng_.Seed(o_.seed);
    if (rank_loss_) np_rng_.Seed(o_.seed);  // set_random_seed's np.random.seed (sample_neg_ix draws from it)
    TaskOptions to;
    to.task = task_;
    to.re_mlp = o_.mlp;
    to.checkpoint_from = o_.checkpoint_from;
    model_ = std::make_unique<Model>(config_, to, o_.seed);
    // A resumed run gets every weight from its state (the init file may be gone).
    if (!o_.checkpoint.empty() && !resume_) model_->Load(o_.checkpoint);
    SetDropout(model_->module(), o_.dropout);
    model_->module().train();
    opt_ = MakeTaskOptimizer(model_->module(), task_, o_);
    params_ = opt_->AllParams();
    if (resume_) Restore();
    SyncModel();
  }

  int rank() const { return rank_; }
  int world() const { return world_; }
  // Rank 0 hosts the store: the others leave first.
  void Finish() {
    if (tb_) tb_->Flush();
    if (dist_) dist_->Barrier();
  }

  // The state resumed (nullptr for a new run): the loop's values and tensors.
  const RestoredState* resumed() const { return restored_ ? &*restored_ : nullptr; }
  const std::string& state_path() const { return resume_->tensors_path; }
  const at::Tensor& StateTensor(const std::string& key) const {
    auto it = restored_->extra.find(key);
    if (it == restored_->extra.end()) throw FormatError("key '" + key + "' is missing", resume_->tensors_path);
    return it->second;
  }

  // The training state beside the checkpoint just saved: the model, AdamW,
  // both generators, the step and loss, plus the loop's own `extra` / `loop`.
  void SaveState(StateDict extra, nlohmann::json loop) {
    std::vector<std::string> rank_rngs;
    if (dist_) rank_rngs = dist_->GatherToRoot(TorchRngBytes());
    if (rank_ != 0) return;
    extra.emplace_back("rng.python", PyRandomStateTensor(rng_.GetState()));
    if (rank_loss_) SaveSamplingRngs(extra);
    loop["global_step"] = global_step_;
    loop["loss_ema"] = loss_.val;
    loop["loss_set"] = loss_.set;
    SaveTaskState(o_.output_dir, global_step_, model_->module(), *opt_, rank_rngs, std::move(extra), std::move(loop),
                  world_, o_.hps_json, model_json_);
  }

  void CreateOutputDir() {
    if (rank_ != 0) return;
    for (const char* sub : {"log", "ckpt", "results"}) fs::create_directories(fs::path(o_.output_dir) / sub);
    if (!resume_) {
      WriteFileAtomic(o_.output_dir + "/log/hps.json", o_.hps_json);
      WriteFileAtomic(o_.output_dir + "/log/model.json", model_json_);
    }
    tb_ = std::make_unique<EventWriter>(o_.output_dir + "/log");
    if (!run_.quiet) {
      if (!run_.banner.empty()) std::fprintf(stderr, "%s\n", run_.banner.c_str());
      std::fprintf(stderr, "train: %lld parameters, %lld steps\n", static_cast<long long>(model_->NumParameters()),
                   static_cast<long long>(o_.num_train_steps));
      if (resume_)
        std::fprintf(stderr, "train: resuming at step %lld from %s\n", static_cast<long long>(global_step_),
                     resume_->tensors_path.c_str());
    }
  }

  // One micro-batch: forward, the script's reduction, backward; an update
  // every gradient_accumulation_steps (`micro` counts from 1 in the epoch).
  // True when an update happened.
  bool Step(const Batch& b, int64_t micro) {
    TaskModelImpl& m = model_->module();
    const at::Tensor scores = m.Scores(b);
    const at::Tensor per_row =
        rank_loss_ ? ReRankLoss(scores, b.targets, SampleReNegatives(scores, b, o_.hard_ratio, np_rng_, rng_), o_.margin)
                   : m.Loss(scores, b);
    const at::Tensor loss = m.TrainLoss(per_row, b);
    loss.backward();
    const double v = loss.item<double>();
    if (dump_.Wants()) dump_.Dump(dump_.NextStem(), BatchArrays(b, task_), v);
    loss_.Add(v);
    if (micro % o_.gradient_accumulation_steps != 0) return false;
    if (dist_) {
      opt_->RestoreZeroGrads();  // every rank reduces the same grads
      dist_->AllReduceGrads(params_, o_.grad_reduce == "mean");
    }
    ++global_step_;
    const double lr = optim::LrSched(global_step_, o_.learning_rate, o_.warmup_steps, o_.num_train_steps);
    opt_->SetLr(lr);
    Scalar("lr", lr);
    Scalar("loss", loss_.val);
    opt_->RestoreZeroGrads();
    if (o_.grad_norm != -1) {
      const double norm = optim::ClipGradNorm(params_, o_.grad_norm);
      Scalar("grad_norm", norm);
    }
    opt_->Step();
    opt_->ZeroGrad();
    if (!run_.quiet && global_step_ % 10 == 0)
      std::fprintf(stderr, "step %lld/%lld  loss %.4f\n", static_cast<long long>(global_step_),
                   static_cast<long long>(o_.num_train_steps), loss_.val);
    return true;
  }

  void Log(const Metrics& metrics, const std::string& what) {
    std::string line = "step " + std::to_string(global_step_) + " " + what + ":";
    for (const auto& [k, v] : metrics) {
      Scalar(k, v);
      char buf[96];
      std::snprintf(buf, sizeof(buf), " %s=%.6f", k.c_str(), v);
      line += buf;
    }
    if (tb_) tb_->Flush();
    if (!run_.quiet) std::fprintf(stderr, "%s\n", line.c_str());
  }

  void Save(const std::string& name) {
    if (rank_ == 0) model_->Save(o_.output_dir + "/ckpt/" + name + ".pt");
  }
  void WriteResults(const std::string& path, const std::string& text) {
    if (rank_ == 0) WriteFileAtomic(path, text);
  }

  TaskModelImpl& model() { return model_->module(); }
  data::PyRandom& rng() { return rng_; }
  int64_t global_step() const { return global_step_; }
  bool Done() const { return global_step_ >= o_.num_train_steps; }

 private:
  void Scalar(const std::string& tag, double v) {
    if (tb_) tb_->AddScalar(tag, v, global_step_);
  }

  // UNITER's broadcast_tensors(params, 0), after every rank found the same
  // output_dir state.
  void SyncModel() {
    if (!dist_) return;
    dist_->StartTogether(o_.output_dir, resume_ ? global_step_ : -1, ModelTensors(model_->module()));
  }

  // train_loss rank: sample_neg_ix advances each rank's own numpy and Python
  // generators, so every rank's pair is kept (rank 0's as rng.python /
  // rng.numpy, rank r's as rng.python_rankR / rng.numpy_rankR).
  static std::string StateBytes(const data::PyRandom::State& s) {
    return std::string(reinterpret_cast<const char*>(&s), sizeof(s));
  }
  void SaveSamplingRngs(StateDict& extra) {
    std::vector<std::string> all;
    if (dist_) all = dist_->GatherToRoot(StateBytes(rng_.GetState()) + StateBytes(np_rng_.GetState()));
    if (rank_ != 0) return;
    extra.emplace_back("rng.numpy", PyRandomStateTensor(np_rng_.GetState()));
    for (size_t r = 1; r < all.size(); ++r) {
      data::PyRandom::State py, np;
      if (all[r].size() != 2 * sizeof(py)) throw Error("rank " + std::to_string(r) + " sent a malformed rng state");
      std::memcpy(&py, all[r].data(), sizeof(py));
      std::memcpy(&np, all[r].data() + sizeof(py), sizeof(np));
      extra.emplace_back("rng.python_rank" + std::to_string(r), PyRandomStateTensor(py));
      extra.emplace_back("rng.numpy_rank" + std::to_string(r), PyRandomStateTensor(np));
    }
  }

  void Restore() {
    restored_ = RestoreTaskState(*resume_, model_->module(), *opt_, rank_, world_, o_.output_dir);
    const std::string suffix = rank_loss_ && rank_ != 0 ? "_rank" + std::to_string(rank_) : "";
    rng_.SetState(PyRandomStateFrom(StateTensor("rng.python" + suffix), resume_->tensors_path));
    if (rank_loss_) np_rng_.SetState(PyRandomStateFrom(StateTensor("rng.numpy" + suffix), resume_->tensors_path));
    const nlohmann::json& l = restored_->loop;
    global_step_ = l.at("global_step").get<int64_t>();
    loss_.val = l.at("loss_ema").get<double>();
    loss_.set = l.at("loss_set").get<bool>();
  }

  TaskKind task_;
  const TrainOptions& o_;
  RunOptions run_;
  UniterConfig config_;
  std::string model_json_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<optim::AdamW> opt_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<EventWriter> tb_;
  data::PyRandom rng_;
  data::NpRandom np_rng_;  // numpy's global generator (train_loss rank only)
  int64_t global_step_ = 0;
  RunningMeter loss_;
  BatchDumper dump_;  // --dump-batches (rank 0 only)
  int rank_ = 0, world_ = 1;
  bool rank_loss_ = false;  // RE's train_loss rank
  std::unique_ptr<DistGroup> dist_;
  std::optional<SavedState> resume_;
  std::optional<RestoredState> restored_;
};

// ---------------------------------------------------------------------- RE

data::ImgDbOptions ReImgOptions(const std::string& img_db, double conf_th, int max_bb, int min_bb, int num_bb,
                                bool compressed) {
  const bool gt = data::ReIsGtDb(img_db);
  data::ImgDbOptions io;
  io.conf_th = gt ? -1 : conf_th;  // create_dataloader: gt boxes are read as feat_numbb100
  io.num_bb = gt ? 100 : num_bb;
  io.max_bb = max_bb;
  io.min_bb = min_bb;
  io.compressed_db = compressed;
  return io;
}

// UNITER writes int(sent_id).
int64_t SentIdNumber(const std::string& id, const std::string& db) {
  size_t used = 0;
  try {
    const long long v = std::stoll(id, &used);
    if (used == id.size()) return v;
  } catch (const std::exception&) {
  }
  throw FormatError("sent_id is not an integer", db + "[" + id + "]");
}

struct ReEval {
  double acc = 0;
  int64_t n = 0;
  nlohmann::ordered_json predictions = nlohmann::ordered_json::array();  // [{sent_id, pred_box, tgt_box}]
  std::vector<float> scores;  // [n, width] padded with −1e4
  int64_t width = 0;
};

// validate() / evaluate(): the argmax box of each sentence against its referent.
// The forwards run on `place` (the model already there) under its autocast.
ReEval EvaluateRe(TaskModelImpl& m, const data::ReTxtDb& txt, const data::ImgFeatDb& img, bool gt,
                  int64_t batch_size, bool keep_scores, const InferPlacement& place = {}) {
  m.eval();
  ReEval out;
  int64_t hits = 0;
  const std::vector<std::string> ids = txt.SentIds();
  std::vector<std::vector<float>> rows;
  {
    torch::NoGradGuard no_grad;
    for (size_t start = 0; start < ids.size(); start += batch_size) {
      std::vector<data::ReItem> items;
      for (size_t i = start; i < std::min(ids.size(), start + batch_size); ++i)
        items.push_back(data::GetReItem(txt, img, ids[i], gt, false));
      const at::Tensor scores = InferScores(m, data::CollateRe(items, false), place);
      const int64_t w = scores.size(1);
      for (size_t i = 0; i < items.size(); ++i) {
        const float* s = scores.data_ptr<float>() + i * w;
        const int64_t ix = ArgMax(s, w);
        const data::ReItem& it = items[i];
        const float* pred = it.obj_boxes.data() + ix * 4;
        hits += ReHit(pred, it.ex.bbox.data());
        nlohmann::ordered_json p;
        p["sent_id"] = SentIdNumber(it.ex.sent_id, txt.dir());
        p["pred_box"] = {static_cast<double>(pred[0]), static_cast<double>(pred[1]), static_cast<double>(pred[2]),
                         static_cast<double>(pred[3])};
        nlohmann::ordered_json tgt = nlohmann::ordered_json::array();
        for (double v : it.ex.bbox) tgt.push_back(it.ex.bbox_is_int ? nlohmann::ordered_json(static_cast<int64_t>(v))
                                                                    : nlohmann::ordered_json(v));
        p["tgt_box"] = tgt;
        out.predictions.push_back(std::move(p));
        if (keep_scores) rows.emplace_back(s, s + w);
      }
    }
  }
  m.train();
  out.n = static_cast<int64_t>(ids.size());
  out.acc = out.n ? static_cast<double>(hits) / out.n : 0;
  if (keep_scores) {
    for (const auto& r : rows) out.width = std::max<int64_t>(out.width, r.size());
    for (auto& r : rows) {
      r.resize(out.width, -1e4f);
      out.scores.insert(out.scores.end(), r.begin(), r.end());
    }
  }
  return out;
}

// train_re.py's dict {sent_id: {pred_box, tgt_box}}.
std::string ReTrainResultsJson(const ReEval& e) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& p : e.predictions)
    j[std::to_string(p["sent_id"].get<int64_t>())] = {{"pred_box", p["pred_box"]}, {"tgt_box", p["tgt_box"]}};
  return j.dump();
}

}  // namespace

namespace {

// Under torchrun: the run on every rank, errors naming the rank.
template <class F>
TrainResult NamingRank(F&& train) {
  const DistEnv env = ReadDistEnv();
  if (env.world_size <= 1) return train(env);
  try {
    return train(env);
  } catch (...) {
    RethrowNamingRank(env);
  }
}

TrainResult TrainReOn(const TrainOptions& o, const RunOptions& ro, const DistEnv& env) {
  if (o.train_txt_dbs.size() != 1) throw UsageError("RE trains on one train_txt_db (train_re.py)");
  data::ReTxtDb train_txt(o.train_txt_dbs[0], o.max_txt_len);
  const bool train_gt = true;  // ReDataset always reads the gt box files
  data::ImgFeatDb train_img(o.train_img_dbs[0], ReImgOptions(o.train_img_dbs[0], o.conf_th, o.max_bb, o.min_bb,
                                                             o.num_bb, o.compressed_db));
  data::ReTxtDb val_txt(o.val_txt_db, -1);
  const bool val_gt = data::ReIsGtDb(o.val_img_db);
  data::ImgFeatDb val_img(o.val_img_db, ReImgOptions(o.val_img_db, o.conf_th, o.max_bb, o.min_bb, o.num_bb,
                                                     o.compressed_db));
  if (o.train_loss == "rank" && o.fix_uniter_quirks && env.world_size > 1)
    throw UsageError("train_loss rank with --fix-uniter-quirks under torchrun is not supported: each rank's shuffle "
                     "draws from its own generator, which the rank loss advances differently, so the ranks' "
                     "orders would differ");
  Run run(TaskKind::kRe, o, ro, env);
  run.Prepare();
  // ReDataset fixes its ids at construction; shuffle() only reorders the
  // txt_db's refs, which the dataset never reads again (the quirk).
  std::vector<std::string> ids = train_txt.SentIds();
  if (ids.empty()) throw UsageError("train_txt_db " + o.train_txt_dbs[0] + " has no sentence within max_txt_len");
  // Every training example is checked before anything is written.
  for (const std::string& id : ids) data::GetReItem(train_txt, train_img, id, train_gt, true);
  run.CreateOutputDir();
  TrainResult result;
  double best = -1;
  int64_t epoch = 0;
  if (const RestoredState* s = run.resumed()) {  // saved at an epoch's end
    epoch = s->loop.at("epoch").get<int64_t>();
    best = s->loop.at("best").get<double>();
    train_txt.SetRefOrder(Int64Vector(run.StateTensor("re.ref_order"), "re.ref_order", run.state_path()),
                          run.state_path());
    if (o.fix_uniter_quirks) ids = train_txt.SentIds();
  }
  auto validate = [&]() {
    const ReEval e = EvaluateRe(run.model(), val_txt, val_img, val_gt, o.val_batch_size, false);
    run.Log({{"valid/acc", e.acc}}, "validation (" + std::to_string(e.n) + " sents)");
    result.val_acc = e.acc;
    result.metrics = {{"valid/acc", e.acc}};
    return e;
  };
  while (!run.Done()) {
    int64_t micro = 0;
    const size_t bs = static_cast<size_t>(o.train_batch_size), world = static_cast<size_t>(run.world());
    const size_t n_batches = (ids.size() + bs - 1) / bs, usable = world > 1 ? n_batches / world * world : n_batches;
    for (size_t k = static_cast<size_t>(run.rank()); k < usable && !run.Done(); k += world) {
      const size_t start = k * bs;
      std::vector<data::ReItem> items;
      for (size_t i = start; i < std::min(ids.size(), start + static_cast<size_t>(o.train_batch_size)); ++i)
        items.push_back(data::GetReItem(train_txt, train_img, ids[i], train_gt, true));
      run.Step(data::CollateRe(items, true), ++micro);
    }
    const ReEval e = validate();
    ++epoch;
    run.Save("model_epoch_" + std::to_string(epoch));
    if (best < 0 || e.acc > best) {
      best = e.acc;
      run.Save("model_epoch_best");
    }
    train_txt.Shuffle(run.rng());
    if (o.fix_uniter_quirks) ids = train_txt.SentIds();
    run.SaveState({{"re.ref_order", Int64Tensor(train_txt.ref_order())}}, {{"epoch", epoch}, {"best", best}});
  }
  const ReEval e = validate();
  result.val_results = o.output_dir + "/results/results_" + std::to_string(run.global_step()) + "_rank0_final.json";
  run.WriteResults(result.val_results, ReTrainResultsJson(e));
  run.Save("model_epoch_" + std::to_string(run.global_step()) + "_final");
  run.Finish();
  result.global_step = run.global_step();
  result.rank = run.rank();
  return result;
}

}  // namespace

TrainResult TrainRe(const TrainOptions& o, const RunOptions& ro) {
  return NamingRank([&](const DistEnv& env) { return TrainReOn(o, ro, env); });
}

InferResult InferRe(const InferOptions& o, const RunOptions& run) {
  if (o.batch_size <= 0) throw UsageError("batch_size must be positive");
  const InferPlacement place = ResolveInferPlacement(o.device, o.fp16, o.amp_dtype);
  const bool gt = data::ReIsGtDb(o.img_db);
  data::ImgFeatDb img(o.img_db, ReImgOptions(o.img_db, o.conf_th, o.max_bb, o.min_bb, o.num_bb, o.compressed_db));
  std::vector<std::unique_ptr<data::ReTxtDb>> txts;
  for (size_t start = 0;;) {  // inf_re.py: several txt_dbs joined by ':'
    const size_t colon = o.txt_db.find(':', start);
    txts.push_back(std::make_unique<data::ReTxtDb>(o.txt_db.substr(start, colon == std::string::npos ? colon : colon - start), -1));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  TaskOptions to;
  to.task = TaskKind::kRe;
  to.re_mlp = o.mlp;
  Model model(UniterConfig::FromJsonFile(o.model_config), to, 0);
  model.Load(o.checkpoint);
  model.module().to(place.device);
  AnnounceInferPlacement(place, run.quiet);
  fs::create_directories(o.output_dir + "/results_test");
  InferResult r;
  std::vector<float> logits;
  int64_t width = 0;
  for (const auto& txt : txts) {
    const ReEval e = EvaluateRe(model.module(), *txt, img, gt, o.batch_size, !o.save_logits.empty(), place);
    const std::string db_split = BaseName(txt->dir()).substr(0, BaseName(txt->dir()).find('.'));
    const std::string name = db_split.substr(db_split.rfind('_') == std::string::npos ? 0 : db_split.rfind('_') + 1);
    r.metrics.emplace_back(name + "-acc(" + (gt ? "gt" : "det") + ")", e.acc);
    // inf_re.py means the gathered predictions (its own file holds only the
    // dict's two keys, a gather bug): [{sent_id, pred_box, tgt_box}].
    r.results = o.output_dir + "/results_test/results_" + CheckpointTag(o.checkpoint) + "_" + db_split + "_on_" +
                BaseName(o.img_db) + "_all.json";
    WriteFileAtomic(r.results, e.predictions.dump());
    r.examples += e.n;
    if (!o.save_logits.empty()) {
      if (width && e.width != width) throw UsageError("--save-logits needs one txt_db (its boxes differ in count)");
      width = e.width;
      logits.insert(logits.end(), e.scores.begin(), e.scores.end());
    }
    if (!run.quiet) std::fprintf(stderr, "infer: %lld sentences of %s -> %s\n", static_cast<long long>(e.n),
                                 txt->dir().c_str(), r.results.c_str());
  }
  if (!o.save_logits.empty())
    WriteFileAtomic(o.save_logits, featdb::WriteNpy(featdb::Array::FromFloat32("logits", {r.examples, width}, logits)));
  return r;
}

// --------------------------------------------------------------------- VCR
namespace {

struct VcrSource {
  data::VcrImgDbs imgs;
  std::shared_ptr<const data::VcrTxtDb> txt;
  std::string task;  // qa or qar
};

struct VcrEval {
  VcrMetrics metrics;
  std::vector<std::pair<std::string, std::vector<float>>> results;  // annot_id → 8 | 20 match logits
  std::vector<float> logits;                                         // [rows, 2]
};

// validate() / evaluate() over examples in db order, val_batch_size examples
// a batch; the forwards on `place` (the model already there) under its autocast.
VcrEval EvaluateVcr(TaskModelImpl& m, const data::VcrTxtDb& txt, const data::VcrImgDbs& imgs, bool test_split,
                    int64_t batch_size, const InferPlacement& place = {}) {
  m.eval();
  VcrEval out;
  const auto& ids = txt.ids();
  {
    torch::NoGradGuard no_grad;
    for (size_t start = 0; start < ids.size(); start += batch_size) {
      std::vector<data::VcrExample> exs;
      std::vector<data::VcrImage> images;
      for (size_t i = start; i < std::min(ids.size(), start + batch_size); ++i) {
        exs.push_back(txt.Get(ids[i]));
        images.push_back(data::GetVcrImage(imgs, exs.back()));
      }
      std::vector<data::RowSpec> rows;
      std::vector<size_t> per;
      for (size_t i = 0; i < exs.size(); ++i) {
        auto r = data::VcrEvalRows(txt, exs[i], images[i], test_split);
        per.push_back(r.size());
        rows.insert(rows.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
      }
      const at::Tensor scores = InferScores(m, data::CollateRows(rows), place);
      const float* s = scores.data_ptr<float>();
      out.logits.insert(out.logits.end(), s, s + scores.numel());
      size_t row = 0;
      for (size_t i = 0; i < exs.size(); ++i) {
        std::vector<float> match;
        for (size_t k = 0; k < per[i]; ++k, ++row) match.push_back(s[row * 2 + 1]);  // rank_scores[:, 1:]
        out.metrics.Add(match, exs[i].qa_target, exs[i].qar_target);
        out.results.emplace_back(exs[i].id, std::move(match));
      }
    }
  }
  m.train();
  return out;
}

Metrics VcrLog(const VcrMetrics& v, const std::string& prefix) {
  const double n = std::max<double>(1, static_cast<double>(v.n));
  return {{prefix + "vcr_qa_loss", v.qa_loss / n}, {prefix + "vcr_qar_loss", v.qar_loss / n},
          {prefix + "acc_qa", v.acc_qa()}, {prefix + "acc_qar", v.acc_qar()}, {prefix + "acc", v.acc()}};
}

std::string VcrResultsJson(const VcrEval& e) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [id, s] : e.results) j[id] = std::vector<double>(s.begin(), s.end());
  return j.dump();
}

data::ImgDbOptions ImgOptions(double conf_th, int max_bb, int min_bb, int num_bb, bool compressed) {
  data::ImgDbOptions io;
  io.conf_th = conf_th;
  io.max_bb = max_bb;
  io.min_bb = min_bb;
  io.num_bb = num_bb;
  io.compressed_db = compressed;
  return io;
}

}  // namespace

namespace {

TrainResult TrainVcrOn(const TrainOptions& o, const RunOptions& ro, const DistEnv& env) {
  const data::ImgDbOptions io = ImgOptions(o.conf_th, o.max_bb, o.min_bb, o.num_bb, o.compressed_db);
  // ConcatDatasetWithLens([qa_0, qar_0, qa_1, qar_1, ...]).
  std::vector<VcrSource> sources;
  std::vector<std::pair<size_t, size_t>> index;  // (source, example)
  std::vector<int64_t> lens;
  for (size_t d = 0; d < o.train_txt_dbs.size(); ++d) {
    const data::VcrImgDbs imgs = data::OpenVcrImgDbs(o.train_img_dbs[d], io);
    for (const char* task : {"qa", "qar"}) {
      sources.push_back({imgs, std::make_shared<const data::VcrTxtDb>(o.train_txt_dbs[d], o.max_txt_len, task), task});
      for (size_t i = 0; i < sources.back().txt->ids().size(); ++i) {
        index.emplace_back(sources.size() - 1, i);
        lens.push_back(data::VcrLen(imgs, *sources.back().txt, i));
      }
    }
  }
  const data::VcrImgDbs val_imgs = data::OpenVcrImgDbs(o.val_img_db, io);
  const data::VcrTxtDb val_txt(o.val_txt_db, -1, "qar");
  data::TokenBucketOptions tb;
  tb.batch_size = o.train_batch_size;
  tb.droplast = true;
  const data::TokenBucketSampler sampler(lens, tb);
  Run run(TaskKind::kVcr, o, ro, env);
  run.Prepare();
  {  // a batch size the sampler cannot use is refused before output_dir is written
    data::PyRandom probe = run.rng();
    if (sampler.Batches(probe).empty())
      throw UsageError("train_batch_size " + std::to_string(o.train_batch_size) +
                       " yields no full batch from the training data");
  }
  run.CreateOutputDir();
  TrainResult result;
  auto validate = [&](bool final) {
    VcrEval e = EvaluateVcr(run.model(), val_txt, val_imgs, final, o.val_batch_size);
    result.metrics = VcrLog(e.metrics, "valid/");
    result.val_acc = e.metrics.acc();
    result.val_loss = result.metrics[0].second + result.metrics[1].second;
    run.Log(result.metrics, final ? "final validation (all QA→R choices)" : "validation");
    return e;
  };
  // The generator before each epoch's batches are drawn; a resumed run draws
  // its epoch again from it, then skips the batches already trained on.
  data::PyRandom::State epoch_rng;
  std::optional<data::PyRandom::State> resume_rng;
  int64_t resume_micro = 0;
  if (const RestoredState* s = run.resumed()) {
    epoch_rng = PyRandomStateFrom(run.StateTensor("rng.python_epoch"), run.state_path());
    resume_rng = run.rng().GetState();
    resume_micro = s->loop.at("micro").get<int64_t>();
  }
  while (!run.Done()) {
    if (resume_rng) run.rng().SetState(epoch_rng);
    else epoch_rng = run.rng().GetState();
    const auto batches = ShardBatches(sampler.Batches(run.rng()), run.rank(), run.world(), /*even=*/true);
    int64_t micro = 0;
    if (resume_rng) {
      run.rng().SetState(*resume_rng);
      resume_rng.reset();
      if (resume_micro < 0 || resume_micro > static_cast<int64_t>(batches.size()))
        throw FormatError("micro " + std::to_string(resume_micro) + " is past the epoch's " +
                              std::to_string(batches.size()) + " batches",
                          run.state_path());
      micro = resume_micro;
    }
    for (size_t bi = static_cast<size_t>(micro); bi < batches.size(); ++bi) {
      const auto& batch = batches[bi];
      std::vector<data::VcrExample> exs;
      std::vector<data::VcrImage> images;
      exs.reserve(batch.size());
      images.reserve(batch.size());
      std::vector<data::RowSpec> rows;
      std::vector<int64_t> targets;
      for (int64_t k : batch) {
        const VcrSource& src = sources[index[k].first];
        exs.push_back(src.txt->Get(src.txt->ids()[index[k].second]));
        images.push_back(data::GetVcrImage(src.imgs, exs.back()));
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        const VcrSource& src = sources[index[batch[i]].first];
        auto r = data::VcrTrainRows(*src.txt, exs[i], images[i], src.task, &targets);
        rows.insert(rows.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
      }
      Batch b = data::CollateRows(rows);
      b.targets = at::tensor(targets, at::kLong);
      b.num_examples = static_cast<int64_t>(batch.size());
      if (run.Step(b, ++micro) && run.global_step() % o.valid_steps == 0) {
        validate(false);
        run.Save("model_step_" + std::to_string(run.global_step()));
        run.SaveState({{"rng.python_epoch", PyRandomStateTensor(epoch_rng)}}, {{"micro", micro}});
      }
      if (run.Done()) break;
    }
  }
  if (run.global_step() % o.valid_steps != 0) validate(false);
  const VcrEval e = validate(true);
  result.val_results = o.output_dir + "/results/results_" + std::to_string(run.global_step()) + "_final_qa_qar_rank0.json";
  run.WriteResults(result.val_results, VcrResultsJson(e));
  run.Save("model_step_" + std::to_string(run.global_step()));
  run.Finish();
  result.global_step = run.global_step();
  result.rank = run.rank();
  return result;
}

}  // namespace

TrainResult TrainVcr(const TrainOptions& o, const RunOptions& ro) {
  return NamingRank([&](const DistEnv& env) { return TrainVcrOn(o, ro, env); });
}

InferResult InferVcr(const InferOptions& o, const RunOptions& run) {
  if (o.batch_size <= 0) throw UsageError("batch_size must be positive");
  const InferPlacement place = ResolveInferPlacement(o.device, o.fp16, o.amp_dtype);
  const data::VcrImgDbs imgs =
      data::OpenVcrImgDbs(o.img_db, ImgOptions(o.conf_th, o.max_bb, o.min_bb, o.num_bb, o.compressed_db));
  const data::VcrTxtDb txt(o.txt_db, -1, "qar");
  TaskOptions to;
  to.task = TaskKind::kVcr;
  to.checkpoint_from = "vcr_pretrain";  // inf_vcr.py: build, expand, load the matching keys
  Model model(UniterConfig::FromJsonFile(o.model_config), to, 0);
  model.Load(o.checkpoint);
  model.module().to(place.device);
  AnnounceInferPlacement(place, run.quiet);
  const VcrEval e = EvaluateVcr(model.module(), txt, imgs, true, o.batch_size, place);
  const std::string dir = o.output_dir + "/results_" + o.split;
  fs::create_directories(dir);
  const std::string stem = dir + "/results_" + CheckpointTag(o.checkpoint) + "_all";
  WriteFileAtomic(stem + ".json", VcrResultsJson(e));
  WriteFileAtomic(stem + ".csv", VcrSubmissionCsv(e.results));
  if (!o.save_logits.empty())
    WriteFileAtomic(o.save_logits, featdb::WriteNpy(featdb::Array::FromFloat32(
                                       "logits", {static_cast<int64_t>(e.logits.size() / 2), 2}, e.logits)));
  InferResult r;
  r.examples = e.metrics.n;
  r.results = stem + ".json";
  r.metrics = VcrLog(e.metrics, "");  // zeros on the test split (no targets), as inf_vcr.py logs them
  if (!run.quiet) std::fprintf(stderr, "infer: %lld examples -> %s\n", static_cast<long long>(r.examples), r.results.c_str());
  return r;
}

}  // namespace uniter::trainer
