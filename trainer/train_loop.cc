// train_nlvr2.py's main() and validate(): micro-batch forward → task loss →
// backward, an update every gradient_accumulation_steps micro-batches (no
// division), warmup-linear lr × lr_mul per group, clip_grad_norm_, UNITER's
// AdamW, validation and a checkpoint every valid_steps and at the end.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/nn/modules/dropout.h>
#include <torch/utils.h>

#include <tbb/task_arena.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/py_json.h"
#include "trainer/answers.h"
#include "trainer/data/datasets.h"
#include "trainer/data/internal/loader.h"
#include "trainer/data/py_random.h"
#include "trainer/data/token_bucket_sampler.h"
#include "trainer/dist.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/batch_dump.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/dist_group.h"
#include "trainer/internal/itm_run.h"
#include "trainer/internal/re_vcr_loop.h"
#include "trainer/internal/running_meter.h"
#include "trainer/internal/task_model.h"
#include "trainer/internal/train_state.h"
#include "trainer/internal/train_step.h"
#include "trainer/optim/internal/adamw.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/tensorboard.h"
#include "trainer/train.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }


struct Split {
  std::string name;
  std::shared_ptr<const data::TaskDataset> dataset;
  std::unique_ptr<data::TokenBucketSampler> sampler;
};

class Trainer {
 public:
  Trainer(TaskKind task, const TrainOptions& o, const RunOptions& run, const DistEnv& env)
      : task_(task), o_(o), run_(run), env_(env), rank_(env.rank), world_(env.world_size),
        dump_(run.dump_batches_dir, rank_ == 0 ? run.dump_batches : 0) {
    if (rank_ != 0) run_.quiet = true;  // rank 0 speaks for the run
  }

  TrainResult Run();

 private:
  void Prepare();
  void CheckOutputDir();
  void Restore();
  void SaveState(const std::vector<std::string>& rank_rngs);
  void CreateOutputDir();
  std::shared_ptr<const data::TaskDataset> OpenDataset(const std::vector<std::string>& txt,
                                                      const std::vector<std::string>& img, bool is_train) const;
  bool TrainEpoch();
  void Update();
  void Validate(Split& split);
  void Checkpoint();
  std::string AnswerName(int64_t i) const;
  std::string Ans2LabelJson() const;
  void Progress(bool final);
  // Multi-process runs (trainer/dist.h): all no-ops with one process.
  void SyncModel();
  void SyncGradients();
  void MergeResults(std::vector<std::string>* csv_parts, nlohmann::json* answers);
  void Scalar(const std::string& tag, double value, int64_t step);

  TaskKind task_;
  TrainOptions o_;
  RunOptions run_;
  DistEnv env_;
  int rank_ = 0, world_ = 1;
  std::unique_ptr<DistGroup> dist_;
  int64_t synced_examples_ = 0;  // n_examples_ as last summed over the ranks
  data::DatasetOptions dopt_;
  UniterConfig config_;
  std::string model_json_;
  std::vector<std::string> label2ans_;  // VQA
  std::unique_ptr<Model> model_;
  std::unique_ptr<optim::AdamW> optimizer_;
  std::vector<at::Tensor> params_;
  std::shared_ptr<const data::TaskDataset> train_;
  std::unique_ptr<data::TokenBucketSampler> train_sampler_;
  std::vector<Split> evals_;
  data::PyRandom rng_;
  std::unique_ptr<tbb::task_arena> arena_;
  std::shared_ptr<data::FeatBufferPool> pool_;
  std::unique_ptr<EventWriter> tb_;
  c10::Device device_{c10::kCPU};
  Precision precision_;
  std::unique_ptr<LossScaler> scaler_;  // enabled for fp16 only
  BatchDumper dump_;  // --dump-batches

  int64_t global_step_ = 0;
  int64_t n_examples_ = 0;
  // Where the run is, as the training state records it: the epoch being run
  // (1-based), its micro-batches consumed, and Python's generator as it was
  // before that epoch's batches were drawn.
  int64_t epoch_ = 0;
  int64_t batch_in_epoch_ = 0;
  data::PyRandom::State epoch_rng_;
  std::optional<SavedState> resume_;                 // the state being resumed
  std::optional<data::PyRandom::State> resume_rng_;  // applied once the epoch's batches are redrawn
  int64_t start_step_ = 0, start_examples_ = 0;      // for rates after a resume
  RunningMeter loss_;
  double last_grad_norm_ = 0;
  Clock::time_point start_;
  Clock::time_point last_progress_;
  bool tty_ = false;
  TrainResult result_;
};

std::shared_ptr<const data::TaskDataset> Trainer::OpenDataset(const std::vector<std::string>& txt,
                                                             const std::vector<std::string>& img,
                                                             bool is_train) const {
  const data::ImgDbOptions io = data::ImgDbOptionsOf(o_);
  std::vector<data::DbPair> pairs;
  for (size_t i = 0; i < txt.size(); ++i) {
    // UNITER's create_dataloader: eval dbs keep every text (max_txt_len -1).
    auto t = std::make_shared<const data::TxtTokDb>(txt[i], is_train ? o_.max_txt_len : -1);
    auto m = std::make_shared<const data::ImgFeatDb>(img[i], io);
    pairs.push_back({t, m});
  }
  return std::make_shared<const data::TaskDataset>(std::move(pairs), dopt_);
}

// Absent or empty: a new run. Holding our training state: resume it (with the
// same options). Anything else is refused before anything is written.
void Trainer::CheckOutputDir() {
  std::error_code ec;
  if (!fs::exists(o_.output_dir, ec)) return;
  if (!fs::is_directory(o_.output_dir, ec)) throw UsageError("output_dir " + o_.output_dir + " is not a folder");
  if (fs::is_empty(o_.output_dir, ec)) return;
  resume_ = FindNewestState(o_.output_dir);
  if (!resume_ && fs::exists(fs::path(o_.output_dir) / "log" / "hps.json", ec))
    throw UsageError("output_dir " + o_.output_dir +
                     " holds a run stopped before its first checkpoint (no training state to resume; use a new or "
                     "empty folder)");
  if (!resume_)
    throw UsageError("output_dir " + o_.output_dir +
                     " is not empty and holds no resumable training state (use a new or empty folder)");
  CheckSameOptions(resume_->meta.value("options", nlohmann::json::object()), nlohmann::json::parse(o_.hps_json),
                   o_.output_dir);
}

void Trainer::Prepare() {
  CheckOutputDir();
  config_ = UniterConfig::FromJsonFile(o_.model_config);
  model_json_ = ReadWholeFile(o_.model_config);
  if (resume_ && resume_->meta.value("model_config", "") != model_json_)
    throw UsageError("cannot resume " + o_.output_dir + ": option 'model_config' (" + o_.model_config +
                     ") has other contents than in the saved run (use the same options, or a new output_dir)");
  dopt_.task = data::TaskForModel(task_, o_.model);
  dopt_.use_img_type = o_.use_img_type;
  if (task_ == TaskKind::kVqa && !o_.ans2label.empty()) label2ans_ = ReadLabel2Ans(o_.ans2label);
  if (task_ == TaskKind::kVqa) dopt_.num_answers = label2ans_.empty() ? 3129 : static_cast<int64_t>(label2ans_.size());
  train_ = OpenDataset(o_.train_txt_dbs, o_.train_img_dbs, true);
  evals_.push_back({"val", OpenDataset({o_.val_txt_db}, {o_.val_img_db}, false), nullptr});
  if (!o_.test_txt_db.empty()) evals_.push_back({"test", OpenDataset({o_.test_txt_db}, {o_.test_img_db}, false), nullptr});

  data::TokenBucketOptions tb;
  tb.batch_size = o_.train_batch_size;
  tb.droplast = true;
  train_sampler_ = std::make_unique<data::TokenBucketSampler>(train_->lens(), tb);
  for (auto& s : evals_) {
    tb.batch_size = o_.val_batch_size;
    tb.droplast = false;
    s.sampler = std::make_unique<data::TokenBucketSampler>(s.dataset->lens(), tb);
  }

  device_ = ResolveDevice(o_.device);
  precision_ = ResolvePrecision(o_.fp16, o_.amp_dtype, device_);
  scaler_ = std::make_unique<LossScaler>(precision_.mode == AmpMode::kFp16);
  // set_random_seed: Python's random (the samplers) and torch (init, dropout).
  rng_.Seed(o_.seed);
  at::manual_seed(o_.seed);
  TaskOptions to;
  to.task = task_;
  to.nlvr2_model = o_.model;
  if (task_ == TaskKind::kVe) to.num_answers = 3;
  if (task_ == TaskKind::kVqa && !label2ans_.empty()) to.num_answers = static_cast<int64_t>(label2ans_.size());
  model_ = std::make_unique<Model>(config_, to, o_.seed);
  // A resumed run gets every weight from its state (the init file may be gone).
  if (!o_.checkpoint.empty() && !resume_) model_->Load(o_.checkpoint);
  SetDropout(model_->module(), o_.dropout);
  model_->module().train();
  // fp32 weights on the device whatever the precision: autocast casts per op
  // and AdamW updates the fp32 masters, as apex O2's master weights.
  model_->module().to(device_);

  optimizer_ = MakeTaskOptimizer(model_->module(), task_, o_);
  params_ = optimizer_->AllParams();

  arena_ = std::make_unique<tbb::task_arena>(std::max(1, o_.n_workers));
  pool_ = data::MakeFeatBufferPool();
  if (resume_) Restore();
}

// Puts back everything SaveState wrote: weights, AdamW's moments, both
// generators, the loop's position and its logged running values.
void Trainer::Restore() {
  const std::string& where = resume_->tensors_path;
  std::map<std::string, at::Tensor> model_state;
  StateDict optim_state;
  std::map<std::string, at::Tensor> rng, scaler;
  for (auto& [key, t] : ReadStateDict(where)) {
    if (key.rfind("model.", 0) == 0) model_state[key.substr(6)] = t;
    else if (key.rfind("optim.", 0) == 0) optim_state.emplace_back(key.substr(6), t);
    else if (key.rfind("rng.", 0) == 0) rng[key.substr(4)] = t;
    else if (key.rfind("scaler.", 0) == 0) scaler[key.substr(7)] = t;
    else throw FormatError("key '" + key + "': not part of a training state", where);
  }
  {
    torch::NoGradGuard no_grad;
    auto restore = [&](const std::string& key, at::Tensor dst) {
      auto it = model_state.find(key);
      if (it == model_state.end()) throw FormatError("key 'model." + key + "' is missing", where);
      if (!it->second.sizes().equals(dst.sizes()) || it->second.scalar_type() != dst.scalar_type())
        throw FormatError("key 'model." + key + "': shape or dtype differs from the model's", where);
      dst.copy_(it->second);
    };
    for (const auto& p : model_->module().named_parameters()) restore(p.key(), p.value());
    for (const auto& b : model_->module().named_buffers()) restore(b.key(), b.value());
  }
  optimizer_->LoadStateTensors(optim_state);
  // A parameter stepped before had a (zeroed) grad that later steps keep
  // stepping; one never stepped is skipped while it gets no gradient.
  std::set<std::string> stepped;
  for (const auto& [name, t] : optim_state) stepped.insert(name.substr(0, name.rfind('.')));
  optimizer_->MarkGradsZeroed(stepped);
  const nlohmann::json& loop = resume_->meta.at("loop");
  const int saved_world = loop.value("world_size", 1);
  if (saved_world != world_)
    throw UsageError("cannot resume " + o_.output_dir + ": it was trained by " + std::to_string(saved_world) +
                     " process(es), this run has " + std::to_string(world_) + " (use the same number)");
  // Each rank's dropout draws differ: rank r > 0 resumes its own generator.
  const std::string torch_rng = rank_ == 0 ? "torch" : "torch_rank" + std::to_string(rank_);
  for (const std::string& k : {std::string("python"), std::string("python_epoch"), torch_rng})
    if (!rng.count(k)) throw FormatError("key 'rng." + k + "' is missing", where);
  epoch_rng_ = PyRandomStateFrom(rng["python_epoch"], where);
  resume_rng_ = PyRandomStateFrom(rng["python"], where);
  SetTorchRngState(rng[torch_rng]);
  if (device_.is_cuda() && rng.count("cuda")) SetDeviceRngState(device_, rng["cuda"]);
  if (scaler_->enabled()) scaler_->LoadState(scaler["scale"], scaler["growth_tracker"], where);
  global_step_ = loop.at("global_step").get<int64_t>();
  epoch_ = loop.at("epoch").get<int64_t>();
  batch_in_epoch_ = loop.at("batch_in_epoch").get<int64_t>();
  n_examples_ = loop.at("n_examples").get<int64_t>();
  loss_.val = loop.at("loss_ema").get<double>();
  loss_.set = loop.at("loss_set").get<bool>();
  last_grad_norm_ = loop.at("last_grad_norm").get<double>();
  result_.val_acc = loop.at("val_acc").get<double>();
  result_.val_loss = loop.at("val_loss").get<double>();
  result_.val_results = loop.at("val_results").get<std::string>();
  start_step_ = global_step_;
  start_examples_ = synced_examples_ = n_examples_;
}

void Trainer::SaveState(const std::vector<std::string>& rank_rngs) {
  StateDict tensors;
  for (const auto& p : model_->module().named_parameters())
    tensors.emplace_back("model." + p.key(), p.value().detach().cpu().contiguous());
  for (const auto& b : model_->module().named_buffers())
    tensors.emplace_back("model." + b.key(), b.value().detach().cpu().contiguous());
  for (auto& [name, t] : optimizer_->StateTensors()) tensors.emplace_back("optim." + name, t.cpu().contiguous());
  if (scaler_->enabled())
    for (auto& [name, t] : scaler_->StateTensors()) tensors.emplace_back(name, t);
  tensors.emplace_back("rng.python", PyRandomStateTensor(rng_.GetState()));
  tensors.emplace_back("rng.python_epoch", PyRandomStateTensor(epoch_rng_));
  tensors.emplace_back("rng.torch", TorchRngState());
  for (size_t r = 1; r < rank_rngs.size(); ++r) {
    at::Tensor t = at::empty({static_cast<int64_t>(rank_rngs[r].size())}, at::kByte);
    std::memcpy(t.data_ptr(), rank_rngs[r].data(), rank_rngs[r].size());
    tensors.emplace_back("rng.torch_rank" + std::to_string(r), t);
  }
  if (device_.is_cuda()) tensors.emplace_back("rng.cuda", DeviceRngState(device_));
  nlohmann::json loop = {{"global_step", global_step_}, {"epoch", epoch_},
                         {"batch_in_epoch", batch_in_epoch_}, {"n_examples", n_examples_},
                         {"loss_ema", loss_.val}, {"loss_set", loss_.set},
                         {"last_grad_norm", last_grad_norm_}, {"val_acc", result_.val_acc},
                         {"val_loss", result_.val_loss}, {"val_results", result_.val_results},
                         {"world_size", world_}};
  nlohmann::json meta = {{"loop", loop}, {"options", nlohmann::json::parse(o_.hps_json)},
                         {"model_config", model_json_}};
  WriteTrainState(o_.output_dir, global_step_, tensors, std::move(meta));
}

void Trainer::CreateOutputDir() {
  for (const char* sub : {"log", "ckpt", "results"}) fs::create_directories(fs::path(o_.output_dir) / sub);
  if (!resume_) {
    WriteFileAtomic(o_.output_dir + "/log/hps.json", o_.hps_json);
    WriteFileAtomic(o_.output_dir + "/log/model.json", model_json_);
    // train_vqa.py saves the answers with the checkpoints; inf_vqa.py reads them there.
    if (task_ == TaskKind::kVqa) WriteFileAtomic(o_.output_dir + "/ckpt/ans2label.json", Ans2LabelJson());
  }
  // A resumed run adds a second events file to log/ (TensorBoard reads the folder).
  tb_ = std::make_unique<EventWriter>(o_.output_dir + "/log");
}

TrainResult Trainer::Run() {
  // NCCL when the run is on CUDA (a GPU per LOCAL_RANK), Gloo on the CPU.
  const bool cuda = env_.world_size > 1 && ResolveDevice(o_.device).is_cuda();
  dist_ = DistGroup::Create(env_, cuda, std::chrono::seconds(run_.dist_timeout_s));
  result_.rank = rank_;
  Prepare();
  SyncModel();
  if (rank_ == 0) CreateOutputDir();
  tty_ = isatty(STDERR_FILENO);
  if (!run_.quiet && !run_.banner.empty()) std::fprintf(stderr, "%s\n", run_.banner.c_str());
  if (!run_.quiet && !precision_.notice.empty()) std::fprintf(stderr, "train: %s\n", precision_.notice.c_str());
  if (!run_.quiet && (device_.is_cuda() || precision_.mode != AmpMode::kFp32))
    std::fprintf(stderr, "train: on %s, %s\n", device_.str().c_str(), AmpModeName(precision_.mode));
  if (!run_.quiet)
    std::fprintf(stderr, "train: %lld examples, %lld parameters, %lld steps\n",
                 static_cast<long long>(train_->size()), static_cast<long long>(model_->NumParameters()),
                 static_cast<long long>(o_.num_train_steps));
  if (resume_ && !run_.quiet)
    std::fprintf(stderr, "train: resuming at step %lld from %s\n", static_cast<long long>(global_step_),
                 resume_->tensors_path.c_str());
  start_ = last_progress_ = Clock::now();
  // A state saved at the last step is a finished run: its final validation
  // and checkpoint are done (redoing them would redraw the val batches).
  if (global_step_ >= o_.num_train_steps) {
    if (tb_) tb_->Flush();
    if (dist_) dist_->Barrier();
    result_.global_step = global_step_;
    return result_;
  }
  optimizer_->ZeroGrad();
  while (!TrainEpoch()) {
  }
  if (o_.num_train_steps % o_.valid_steps != 0) {
    for (auto& s : evals_) Validate(s);
    Checkpoint();
  }
  Progress(true);
  if (tb_) tb_->Flush();
  if (dist_) dist_->Barrier();  // rank 0 hosts the store: the others leave first
  result_.global_step = global_step_;
  return result_;
}

// One pass over the training batches; true once num_train_steps is reached.
bool Trainer::TrainEpoch() {
  data::LoaderOptions lo;
  lo.arena = arena_.get();
  lo.buffers = pool_;
  std::vector<std::vector<int64_t>> batches;
  if (resume_rng_) {
    // The interrupted epoch: its batch list drawn again, the generator as it
    // was at the checkpoint, the batches already trained on skipped.
    rng_.SetState(epoch_rng_);
    batches = ShardBatches(train_sampler_->Batches(rng_), rank_, world_, /*even=*/true);
    rng_.SetState(*resume_rng_);
    resume_rng_.reset();
    if (batch_in_epoch_ < 0 || batch_in_epoch_ > static_cast<int64_t>(batches.size()))
      throw FormatError("batch_in_epoch " + std::to_string(batch_in_epoch_) + " is past the epoch's " +
                            std::to_string(batches.size()) + " batches",
                        resume_->tensors_path);
    batches.erase(batches.begin(), batches.begin() + batch_in_epoch_);
  } else {
    epoch_rng_ = rng_.GetState();
    batches = ShardBatches(train_sampler_->Batches(rng_), rank_, world_, /*even=*/true);
    if (batches.empty())
      throw UsageError("train_batch_size " + std::to_string(o_.train_batch_size) + " yields no full batch " +
                       (world_ > 1 ? "for each of the " + std::to_string(world_) + " processes " : "") +
                       "from the training data");
    ++epoch_;
    batch_in_epoch_ = 0;
  }
  data::PrefetchLoader loader(train_, std::move(batches), lo);
  while (auto batch = loader.Next()) {
    n_examples_ += batch->targets.size(0);
    const double loss =
        ForwardBackward(model_->module(), *batch, {device_, precision_.mode, scaler_.get(), o_.pin_mem}).item<double>();
    if (dump_.Wants()) dump_.Dump(dump_.NextStem(), BatchArrays(*batch, task_), loss);
    loss_.Add(loss);
    if (++batch_in_epoch_ % o_.gradient_accumulation_steps == 0) {
      SyncGradients();
      Update();
      if (global_step_ % o_.valid_steps == 0) {
        for (auto& s : evals_) Validate(s);
        Checkpoint();
      }
      if (global_step_ >= o_.num_train_steps) return true;
    }
  }
  return false;
}

void Trainer::Update() {
  ++global_step_;
  const double lr = optim::LrSched(global_step_, o_.learning_rate, o_.warmup_steps, o_.num_train_steps);
  Scalar("lr", lr, global_step_);
  Scalar("loss", loss_.val, global_step_);
  const UpdateResult u = ApplyUpdate(*optimizer_, params_, lr, o_.grad_norm, scaler_.get());
  if (o_.grad_norm != -1) {
    last_grad_norm_ = u.grad_norm;
    Scalar("grad_norm", last_grad_norm_, global_step_);
  }
  if (u.overflow && !run_.quiet)
    std::fprintf(stderr, "%sstep %lld: gradient overflow, step skipped, loss scale now %g\n", tty_ ? "\n" : "",
                 static_cast<long long>(global_step_), static_cast<double>(scaler_->scale()));
  if (global_step_ % 100 == 0) {
    const double ex_per_s =
        static_cast<double>(static_cast<int64_t>((n_examples_ - start_examples_) / Seconds(start_)));
    Scalar("perf/ex_per_s", ex_per_s, global_step_);
  }
  Progress(false);
  if (run_.on_step) run_.on_step(global_step_, o_.num_train_steps);
}

// train_nlvr2.py / train_vqa.py / train_ve.py's validate(): the model in
// eval mode under no_grad over the split's TokenBucketSampler batches (drawn
// from the run's generator, as UNITER's eval loader does).
void Trainer::Validate(Split& split) {
  TaskModelImpl& m = model_->module();
  m.eval();
  const auto st = Clock::now();
  double loss_sum = 0, score = 0;
  int64_t n_ex = 0;
  std::vector<std::string> csv_parts;  // one per batch
  nlohmann::json answers = nlohmann::json::object();
  {
    torch::NoGradGuard no_grad;
    data::LoaderOptions lo;
    lo.arena = arena_.get();
    lo.buffers = pool_;
    data::PrefetchLoader loader(split.dataset, ShardBatches(split.sampler->Batches(rng_), rank_, world_, false), lo);
    while (auto batch = loader.Next()) {
      at::Tensor scores;
      {
        AutocastGuard autocast(precision_.mode, device_);
        scores = m.Scores(ToDevice(*batch, device_, o_.pin_mem));
      }
      scores = scores.to(at::kCPU, at::kFloat);
      const at::Tensor pred = scores.argmax(-1);
      const auto* p = pred.data_ptr<int64_t>();
      if (task_ == TaskKind::kNlvr2) {
        loss_sum += at::cross_entropy_loss(scores, batch->targets, {}, at::Reduction::Sum).item<double>();
        score += static_cast<double>(pred.eq(batch->targets).sum().item<int64_t>());
        std::string& csv = csv_parts.emplace_back();
        for (size_t i = 0; i < batch->qids.size(); ++i) csv += batch->qids[i] + (p[i] == 1 ? ",True\n" : ",False\n");
      } else {
        // compute_score_with_logits: the soft target at the argmax.
        loss_sum += at::binary_cross_entropy_with_logits(scores, batch->targets, {}, {}, at::Reduction::Sum)
                        .item<double>();
        score += batch->targets.gather(1, pred.unsqueeze(1)).sum().item<double>();
        for (size_t i = 0; i < batch->qids.size(); ++i) answers[batch->qids[i]] = AnswerName(p[i]);
      }
      n_ex += static_cast<int64_t>(batch->qids.size());
    }
  }
  if (dist_) {
    const auto sums = dist_->AllReduceSum({loss_sum, score, static_cast<double>(n_ex)});
    loss_sum = sums[0], score = sums[1], n_ex = static_cast<int64_t>(sums[2]);
    MergeResults(&csv_parts, &answers);
  }
  m.train();
  const double secs = Seconds(st);
  const double acc = n_ex ? score / n_ex : 0.0;
  const double loss = n_ex ? loss_sum / n_ex : 0.0;
  const std::string step = std::to_string(global_step_);
  std::string path, tag = "valid/" + split.name + "_", text;
  if (task_ == TaskKind::kNlvr2) {
    path = o_.output_dir + "/results/" + split.name + "_results_" + step + "_rank0.csv";
    for (const auto& part : csv_parts) text += part;
  } else if (task_ == TaskKind::kVe) {
    path = o_.output_dir + "/results/" + split.name + "_results_" + step + "_rank0.json";
    text = answers.dump();
  } else {  // train_vqa.py: val only, untagged by split
    path = o_.output_dir + "/results/results_" + step + "_rank0.json";
    text = answers.dump();
    tag = "valid/";
  }
  if (rank_ == 0) WriteFileAtomic(path, text);
  Scalar(tag + "loss", loss, global_step_);
  Scalar(tag + "acc", acc, global_step_);
  Scalar(tag + "ex_per_s", n_ex / std::max(secs, 1e-9), global_step_);
  if (tb_) tb_->Flush();
  if (split.name == "val") {
    result_.val_acc = acc;
    result_.val_loss = loss;
    result_.val_results = path;
  }
  if (!run_.quiet) {
    if (tty_) std::fputc('\n', stderr);
    std::fprintf(stderr, "step %lld: %s_acc=%.6f %s_loss=%.6f (%lld examples, %.1f s)\n",
                 static_cast<long long>(global_step_), split.name.c_str(), acc, split.name.c_str(), loss,
                 static_cast<long long>(n_ex), secs);
  }
}

// json.dump(ans2label) of the answers read (their file's order); without a
// file, the answers named by index.
std::string Trainer::Ans2LabelJson() const {
  if (!o_.ans2label.empty()) return PyJsonIntMap(ReadAns2Label(o_.ans2label));
  std::vector<std::pair<std::string, int64_t>> items;
  for (int64_t i = 0; i < model_->options().num_answers; ++i) items.emplace_back(std::to_string(i), i);
  return PyJsonIntMap(items);
}

// VE: data/ve.py's label names; VQA: ans2label's answers (their index without one).
std::string Trainer::AnswerName(int64_t i) const {
  if (task_ == TaskKind::kVe) {
    return VeLabels().at(i);
  }
  return i < static_cast<int64_t>(label2ans_.size()) ? label2ans_[i] : std::to_string(i);
}

// UNITER's checkpoint, then the training state to resume from it (with
// every rank's torch generator).
void Trainer::Checkpoint() {
  std::vector<std::string> rank_rngs;
  if (dist_) {
    const at::Tensor t = TorchRngState().contiguous();
    rank_rngs = dist_->GatherToRoot(std::string(static_cast<const char*>(t.data_ptr()), t.numel()));
  }
  if (rank_ != 0) return;
  // UNITER under apex O2 saved its fp16 model: fp16 training saves fp16
  // (the fp32 masters rounded, as O2's model copy), any other run fp32.
  model_->Save(o_.output_dir + "/ckpt/model_step_" + std::to_string(global_step_) + ".pt",
               precision_.mode == AmpMode::kFp16 ? CheckpointDtype::kFloat16 : CheckpointDtype::kFloat32);
  SaveState(rank_rngs);
}

// UNITER's broadcast_tensors(params, 0): every rank starts from rank 0's
// weights (the one seed gives the same ones; this makes sure). The barrier:
// every rank has checked output_dir before rank 0 creates it.
void Trainer::SyncModel() {
  if (!dist_) return;
  dist_->StartTogether(o_.output_dir, resume_ ? global_step_ : -1, ModelTensors(model_->module()));
}

// At each update: every rank's gradients summed or averaged (grad_reduce),
// and the examples every rank consumed counted (UNITER's ex/s sums them).
void Trainer::SyncGradients() {
  if (!dist_) return;
  optimizer_->RestoreZeroGrads();
  dist_->AllReduceGrads(params_, o_.grad_reduce == "mean");
  const auto n = dist_->AllReduceSum({static_cast<double>(n_examples_ - synced_examples_)});
  n_examples_ = synced_examples_ + static_cast<int64_t>(n[0]);
  synced_examples_ = n_examples_;
}

// Rank 0 gets every rank's validation results in the order one process
// writes them: global batch i was rank i % W's (i / W)-th.
void Trainer::MergeResults(std::vector<std::string>* csv_parts, nlohmann::json* answers) {
  const auto parts = dist_->GatherToRoot(nlohmann::json{{"csv", *csv_parts}, {"answers", *answers}}.dump());
  if (rank_ != 0) return;
  std::vector<std::vector<std::string>> csv(parts.size());
  size_t total = 0;
  for (size_t r = 0; r < parts.size(); ++r) {
    const auto j = nlohmann::json::parse(parts[r]);
    csv[r] = j.at("csv").get<std::vector<std::string>>();
    total += csv[r].size();
    if (r > 0) answers->update(j.at("answers"));
  }
  csv_parts->clear();
  for (size_t i = 0; i < total; ++i) csv_parts->push_back(std::move(csv[i % world_][i / world_]));
}

void Trainer::Scalar(const std::string& tag, double value, int64_t step) {
  if (tb_) tb_->AddScalar(tag, value, step);
}

// Steps/s, examples/s, loss and ETA: a rewritten line on a terminal, else a
// line every 10 s.
void Trainer::Progress(bool final) {
  if (run_.quiet) return;
  const double since = Seconds(last_progress_);
  if (!final && since < (tty_ ? 0.5 : 10.0)) return;
  last_progress_ = Clock::now();
  const double secs = std::max(Seconds(start_), 1e-9);
  const double sps = (global_step_ - start_step_) / secs;
  const double eta = sps > 0 ? (o_.num_train_steps - global_step_) / sps : 0;
  std::fprintf(stderr, "%sstep %lld/%lld  %.2f steps/s  %.1f ex/s  loss %.4f  grad_norm %.3f  ETA %.0f s%s",
               tty_ ? "\r" : "", static_cast<long long>(global_step_), static_cast<long long>(o_.num_train_steps),
               sps, (n_examples_ - start_examples_) / secs, loss_.val, last_grad_norm_, eta, tty_ && !final ? "" : "\n");
}

}  // namespace

TrainResult Train(TaskKind task, const TrainOptions& options, const RunOptions& run) {
  if (task == TaskKind::kRe) return TrainRe(options, run);
  if (task == TaskKind::kVcr) return TrainVcr(options, run);
  if (task == TaskKind::kItm) return TrainItm(options, run);  // train_itm.cc
  const DistEnv env = ReadDistEnv();
  if (env.world_size <= 1) return Trainer(task, options, run, env).Run();
  try {
    return Trainer(task, options, run, env).Run();
  } catch (...) {
    RethrowNamingRank(env);  // "rank 1 of 2: ..." from every process
  }
}

}  // namespace uniter::trainer
