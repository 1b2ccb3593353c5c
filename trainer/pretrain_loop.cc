// pretrain.py's main(): MetaLoader draws one task per accumulation group from
// the mix_ratio pool, each task's micro-batch → model loss (ITM: + λ·OT) →
// backward with that task's loss scaler, an update every
// gradient_accumulation_steps micro-batches (warmup-linear lr, clipping,
// AdamW), validation of every val task and a checkpoint every valid_steps.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include <tbb/task_arena.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "trainer/data/py_random.h"
#include "trainer/data/task_mixer.h"
#include "trainer/data/token_bucket_sampler.h"
#include "trainer/dist.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/batch_dump.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/dist_group.h"
#include "trainer/internal/pretrain_run.h"
#include "trainer/internal/running_meter.h"
#include "trainer/internal/train_state.h"
#include "trainer/internal/train_step.h"
#include "trainer/optim/internal/adamw.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/pretrain.h"
#include "trainer/tensorboard.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// One training task's endless stream of micro-batches (all ranks' together):
// epoch after epoch of TokenBucketSampler batches (droplast), epoch e's drawn
// from ExampleSeed(seed, e, −2 − index) after the data's NewEpoch(e).
struct TaskStream {
  std::string name;  // `{task}_{dataset name}`
  int index = 0;
  int mix_ratio = 1;
  std::unique_ptr<PretrainTaskData> data;
  std::unique_ptr<LossScaler> scaler;  // apex's loss_id of this task
  int64_t next = 0;                    // global micro-batches handed out
  int64_t epoch = 0, epoch_start = 0;  // the listed epoch and its first global position
  std::vector<std::vector<int64_t>> batches;
  double n_examples = 0, n_in_units = 0, n_loss_units = 0;  // this rank's, since the run (re)started
  BatchDumper dump;  // --dump-batches: this task's first N micro-batches (rank 0)
};

struct ValTask {
  std::string name;
  std::unique_ptr<PretrainTaskData> data;
  std::vector<std::vector<int64_t>> batches;  // this rank's share
};

class Pretrainer {
 public:
  Pretrainer(const PretrainOptions& o, const RunOptions& run, const DistEnv& env)
      : o_(o), run_(run), env_(env), rank_(env.rank), world_(env.world_size), dbs_(o_) {
    if (rank_ != 0) run_.quiet = true;
  }
  PretrainResult Run();

 private:
  void CheckOutputDir();
  void Prepare();
  void Restore();
  void SaveState(const std::vector<std::string>& rank_rngs);
  const std::vector<int64_t>& BatchAt(TaskStream& s, int64_t g);
  TaskStream& Stream(const std::string& name);
  void MicroBatch(TaskStream& s);
  void Update(TaskStream& s);
  void Validate();
  void Checkpoint();
  void Perf();
  void Scalar(const std::string& tag, double value, int64_t step) {
    if (tb_) tb_->AddScalar(tag, value, step);
  }
  RunningMeter& MeterOf(const std::string& name);

  PretrainOptions o_;
  RunOptions run_;
  DistEnv env_;
  int rank_ = 0, world_ = 1;
  std::unique_ptr<DistGroup> dist_;
  PretrainDbs dbs_;
  std::string model_json_;
  PretrainModel model_{nullptr};
  std::unique_ptr<optim::AdamW> optimizer_;
  std::vector<at::Tensor> params_;
  std::vector<TaskStream> streams_;
  std::vector<ValTask> vals_;
  std::vector<RunningMeter> meters_;  // UNITER's task2loss, its order
  std::unique_ptr<data::TaskMixer> mixer_;
  data::PyRandom rng_;  // the MetaLoader's draws
  std::unique_ptr<tbb::task_arena> arena_;
  std::unique_ptr<EventWriter> tb_;
  StepContext ctx_;
  std::optional<SavedState> resume_;
  int64_t global_step_ = 0;
  double last_grad_norm_ = 0;
  Clock::time_point start_, last_progress_;
  PretrainResult result_;
};

void Pretrainer::CheckOutputDir() {
  std::error_code ec;
  if (!fs::exists(o_.output_dir, ec)) return;
  if (!fs::is_directory(o_.output_dir, ec)) throw UsageError("output_dir " + o_.output_dir + " is not a folder");
  if (fs::is_empty(o_.output_dir, ec)) return;
  resume_ = FindNewestState(o_.output_dir);
  if (!resume_)
    throw UsageError("output_dir " + o_.output_dir +
                     " is not empty and holds no resumable training state (use a new or empty folder)");
  CheckSameOptions(resume_->meta.value("options", nlohmann::json::object()), nlohmann::json::parse(o_.hps_json),
                   o_.output_dir);
}

void Pretrainer::Prepare() {
  CheckOutputDir();
  // create_dataloaders: one loader per `{task}_{name}`, in the config's order.
  std::vector<std::pair<std::string, int>> pool;
  for (const auto& d : o_.train_datasets) {
    for (size_t i = 0; i < d.tasks.size(); ++i) {
      TaskStream& s = streams_.emplace_back();
      s.name = d.tasks[i] + "_" + d.name;
      s.index = static_cast<int>(streams_.size()) - 1;
      s.mix_ratio = d.mix_ratio[i];
      s.data = MakeTaskData(dbs_, d, d.tasks[i], true, o_);
      if (rank_ == 0 && run_.dump_batches > 0) s.dump = BatchDumper(run_.dump_batches_dir, run_.dump_batches);
      pool.emplace_back(s.name, s.mix_ratio);
    }
  }
  for (const auto& d : o_.val_datasets) {
    for (const auto& t : d.tasks) {
      ValTask& v = vals_.emplace_back();
      v.name = t + "_" + d.name;
      v.data = MakeTaskData(dbs_, d, t, false, o_);
      v.batches = ShardBatches(ValBatches(*v.data, o_, static_cast<int64_t>(vals_.size()) - 1), rank_, world_, false);
    }
  }
  CheckSameTokenizer(o_);
  for (const auto& s : streams_) meters_.push_back({"loss/" + s.name});
  if (o_.itm_ot_lambda > 0)
    for (const auto& s : streams_)
      if (s.data->task() == PretrainTask::kItm)
        for (const char* k : {"_xe", "_ot", "_ot_pos", "_ot_neg"}) meters_.push_back({"loss/" + s.name + k});
  // Every rank draws each group's task from the same seeded generator; W
  // processes take W × accum global micro-batches per update.
  mixer_ = std::make_unique<data::TaskMixer>(pool, o_.gradient_accumulation_steps * world_);
  rng_.Seed(o_.seed);

  ctx_.device = ResolveDevice(o_.device);
  const Precision precision = ResolvePrecision(o_.fp16, o_.amp_dtype, ctx_.device);
  ctx_.amp = precision.mode;
  ctx_.pin = o_.pin_mem;
  if (!run_.quiet && !precision.notice.empty()) std::fprintf(stderr, "train: %s\n", precision.notice.c_str());
  for (auto& s : streams_) s.scaler = std::make_unique<LossScaler>(ctx_.amp == AmpMode::kFp16);

  model_ = MakePretrainModel(o_, &model_json_);
  if (resume_ && resume_->meta.value("model_config", "") != model_json_)
    throw UsageError("cannot resume " + o_.output_dir + ": option 'model_config' (" + o_.model_config +
                     ") has other contents than in the saved run (use the same options, or a new output_dir)");
  if (!o_.checkpoint.empty() && !resume_) {
    const LoadReport r = LoadCheckpoint(*model_, o_.checkpoint);
    if (!run_.quiet && !r.missing.empty())
      std::fprintf(stderr, "pretrain: %zu parameters not in %s (initialised), e.g. %s\n", r.missing.size(),
                   o_.checkpoint.c_str(), r.missing[0].c_str());
  }
  // pretrain_vcr.py: init_type_embedding + init_word_embedding after
  // from_pretrained (a resumed run restores the expanded weights next).
  if (o_.vcr) model_->ExpandForVcr(kVcrSpecialTokens);
  SetDropout(*model_, o_.dropout);
  model_->train();
  model_->to(ctx_.device);

  // build_optimizer over named_parameters(), which in PyTorch lists a tied
  // tensor once, under its first name (the decoder and feat_regress weights
  // are the embeddings' and img_linear's).
  std::vector<std::pair<std::string, at::Tensor>> named;
  std::unordered_set<const void*> seen;
  for (const auto& p : model_->named_parameters())
    if (seen.insert(p.value().unsafeGetTensorImpl()).second) named.emplace_back(p.key(), p.value());
  optim::ParamGroupOptions groups;
  groups.weight_decay = o_.weight_decay;
  optim::AdamWOptions ao;
  ao.lr = o_.learning_rate;
  ao.beta1 = o_.beta1;
  ao.beta2 = o_.beta2;
  optimizer_ = std::make_unique<optim::AdamW>(optim::AdamW::FromNamedParameters(named, groups, ao));
  params_ = optimizer_->AllParams();
  arena_ = std::make_unique<tbb::task_arena>(std::max(1, o_.n_workers));
  if (resume_) Restore();
}

void Pretrainer::Restore() {
  const std::string& where = resume_->tensors_path;
  std::map<std::string, at::Tensor> model_state, rng, scaler;
  StateDict optim_state;
  for (auto& [key, t] : ReadStateDict(where)) {
    if (key.rfind("model.", 0) == 0) model_state[key.substr(6)] = t;
    else if (key.rfind("optim.", 0) == 0) optim_state.emplace_back(key.substr(6), t);
    else if (key.rfind("rng.", 0) == 0) rng[key.substr(4)] = t;
    else if (key.rfind("scaler.", 0) == 0) scaler[key.substr(7)] = t;
    else throw FormatError("key '" + key + "': not part of a training state", where);
  }
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : model_->named_parameters()) {
      auto it = model_state.find(p.key());
      if (it == model_state.end() || !it->second.sizes().equals(p.value().sizes()))
        throw FormatError("key 'model." + p.key() + "' is missing or has another shape", where);
      p.value().copy_(it->second);
    }
  }
  optimizer_->LoadStateTensors(optim_state);
  std::set<std::string> stepped;
  for (const auto& [name, t] : optim_state) stepped.insert(name.substr(0, name.rfind('.')));
  for (const auto& g : optimizer_->groups())
    for (size_t i = 0; i < g.names.size(); ++i)
      if (stepped.count(g.names[i])) g.params[i].mutable_grad() = at::zeros_like(g.params[i]);
  const nlohmann::json& loop = resume_->meta.at("loop");
  const int saved_world = loop.value("world_size", 1);
  if (saved_world != world_)
    throw UsageError("cannot resume " + o_.output_dir + ": it was trained by " + std::to_string(saved_world) +
                     " process(es), this run has " + std::to_string(world_) + " (use the same number)");
  const std::string torch_rng = rank_ == 0 ? "torch" : "torch_rank" + std::to_string(rank_);
  for (const std::string& k : {std::string("python"), torch_rng})
    if (!rng.count(k)) throw FormatError("key 'rng." + k + "' is missing", where);
  rng_.SetState(PyRandomStateFrom(rng["python"], where));
  SetTorchRngState(rng[torch_rng]);
  if (ctx_.device.is_cuda() && rng.count("cuda")) SetDeviceRngState(ctx_.device, rng["cuda"]);
  global_step_ = loop.at("global_step").get<int64_t>();
  last_grad_norm_ = loop.at("last_grad_norm").get<double>();
  mixer_->Restore(loop.at("mixer_step").get<int64_t>(), loop.at("mixer_current").get<std::string>());
  for (auto& s : streams_) {
    s.next = loop.at("streams").at(s.name).get<int64_t>();  // BatchAt replays the epochs up to it
    if (s.scaler->enabled()) s.scaler->LoadState(scaler[s.name + ".scale"], scaler[s.name + ".growth_tracker"], where);
  }
  for (auto& m : meters_) {
    const auto& v = loop.at("meters").at(m.name);
    m.val = v.at(0).get<double>();
    m.set = v.at(1).get<bool>();
  }
}

void Pretrainer::SaveState(const std::vector<std::string>& rank_rngs) {
  StateDict tensors;
  for (const auto& p : model_->named_parameters())
    tensors.emplace_back("model." + p.key(), p.value().detach().cpu().contiguous());
  for (auto& [name, t] : optimizer_->StateTensors()) tensors.emplace_back("optim." + name, t.cpu().contiguous());
  nlohmann::json streams = nlohmann::json::object(), meters = nlohmann::json::object();
  for (const auto& s : streams_) {
    streams[s.name] = s.next;
    if (s.scaler->enabled())
      for (auto& [name, t] : s.scaler->StateTensors())  // "scaler.scale" → "scaler.<task>.scale"
        tensors.emplace_back("scaler." + s.name + name.substr(6), t);
  }
  for (const auto& m : meters_) meters[m.name] = {m.val, m.set};
  tensors.emplace_back("rng.python", PyRandomStateTensor(rng_.GetState()));
  tensors.emplace_back("rng.torch", TorchRngState());
  for (size_t r = 1; r < rank_rngs.size(); ++r) {
    at::Tensor t = at::empty({static_cast<int64_t>(rank_rngs[r].size())}, at::kByte);
    std::memcpy(t.data_ptr(), rank_rngs[r].data(), rank_rngs[r].size());
    tensors.emplace_back("rng.torch_rank" + std::to_string(r), t);
  }
  if (ctx_.device.is_cuda()) tensors.emplace_back("rng.cuda", DeviceRngState(ctx_.device));
  nlohmann::json loop = {{"global_step", global_step_},      {"last_grad_norm", last_grad_norm_},
                         {"mixer_step", mixer_->step()},     {"mixer_current", mixer_->current()},
                         {"streams", streams},               {"meters", meters},
                         {"world_size", world_}};
  nlohmann::json meta = {{"loop", loop}, {"options", nlohmann::json::parse(o_.hps_json)},
                         {"model_config", model_json_}};
  WriteTrainState(o_.output_dir, global_step_, tensors, std::move(meta));
}

// Global micro-batch g of the stream, listing epochs up to it (a resumed run
// replays them: each epoch's batches follow from the seed alone).
const std::vector<int64_t>& Pretrainer::BatchAt(TaskStream& s, int64_t g) {
  while (s.epoch == 0 || g >= s.epoch_start + static_cast<int64_t>(s.batches.size())) {
    s.epoch_start += static_cast<int64_t>(s.batches.size());
    ++s.epoch;
    s.data->NewEpoch(s.epoch);
    data::TokenBucketOptions tb;
    tb.batch_size = o_.train_batch_size;
    tb.droplast = true;
    data::PyRandom rng(data::ExampleSeed(o_.seed, s.epoch, -2 - s.index));
    s.batches = data::TokenBucketSampler(s.data->Lens(), tb).Batches(rng);
    if (s.batches.empty())
      throw UsageError("train_batch_size " + std::to_string(o_.train_batch_size) + " yields no full batch for " +
                       s.name);
  }
  return s.batches.at(g - s.epoch_start);
}

TaskStream& Pretrainer::Stream(const std::string& name) {
  for (auto& s : streams_)
    if (s.name == name) return s;
  throw Error("no task " + name);
}

RunningMeter& Pretrainer::MeterOf(const std::string& name) {
  for (auto& m : meters_)
    if (m.name == name) return m;
  throw Error("no meter " + name);
}

// One micro-batch of `s`: this rank's turn among the W global ones.
void Pretrainer::MicroBatch(TaskStream& s) {
  const int64_t g = s.next + rank_;
  s.next += world_;
  const PretrainBatch cpu = s.data->Load(BatchAt(s, g), *arena_);
  const PretrainBatch b = ToDevice(cpu, ctx_.device, ctx_.pin);
  const PretrainTask task = s.data->task();
  s.n_examples += static_cast<double>(b.batch.input_ids.size(0));
  s.n_in_units += static_cast<double>(b.batch.attn_masks.eq(1).sum().item<int64_t>());
  PretrainOutput out;
  StepContext ctx = ctx_;
  ctx.scaler = s.scaler.get();
  const at::Tensor loss = ForwardBackward(
      [&] {
        out = model_->Loss(task, b);
        return PretrainModelImpl::TrainLoss(task, out, o_.itm_ot_lambda);
      },
      ctx);
  s.n_loss_units += static_cast<double>(out.loss.size(0));
  if (task == PretrainTask::kItm && out.ot_pos.defined()) {
    // NaN means of an empty side are skipped, as UNITER's isnan checks.
    MeterOf("loss/" + s.name + "_ot_pos").Add(out.ot_pos.mean().item<double>());
    MeterOf("loss/" + s.name + "_ot_neg").Add(out.ot_neg.mean().item<double>());
    const double n = static_cast<double>(out.ot_pos.size(0) + out.ot_neg.size(0));
    MeterOf("loss/" + s.name + "_xe").Add(out.loss.mean().item<double>());
    MeterOf("loss/" + s.name + "_ot").Add((out.ot_pos.sum() - out.ot_neg.sum()).item<double>() / n);
  }
  MeterOf("loss/" + s.name).Add(loss.item<double>());
  if (s.dump.Wants()) {
    char stem[32];
    std::snprintf(stem, sizeof(stem), "_%03lld", static_cast<long long>(s.dump.written()));
    s.dump.Dump(s.name + stem, PretrainBatchArrays(cpu), loss.item<double>());
  }
}

void Pretrainer::Update(TaskStream& s) {
  if (dist_) {
    optimizer_->RestoreZeroGrads();  // every rank reduces the same grads
    dist_->AllReduceGrads(params_, o_.grad_reduce == "mean");
  }
  ++global_step_;
  const double lr = optim::LrSched(global_step_, o_.learning_rate, o_.warmup_steps, o_.num_train_steps);
  Scalar("lr", lr, global_step_);
  // log_scaler_dict runs before TB_LOGGER.step(): the meters land one step back.
  for (const auto& m : meters_) Scalar(m.name, m.val, global_step_ - 1);
  const UpdateResult u = ApplyUpdate(*optimizer_, params_, lr, o_.grad_norm, s.scaler.get());
  if (o_.grad_norm != -1) {
    last_grad_norm_ = u.grad_norm;
    Scalar("grad_norm", u.grad_norm, global_step_);
  }
  if (u.overflow && !run_.quiet)
    std::fprintf(stderr, "step %lld (%s): gradient overflow, step skipped, loss scale now %g\n",
                 static_cast<long long>(global_step_), s.name.c_str(), static_cast<double>(s.scaler->scale()));
  if (global_step_ % 100 == 0) Perf();
  if (!run_.quiet && (Seconds(last_progress_) >= 10 || global_step_ == o_.num_train_steps)) {
    last_progress_ = Clock::now();
    std::fprintf(stderr, "step %lld/%lld  %.2f steps/s  %s %.4f\n", static_cast<long long>(global_step_),
                 static_cast<long long>(o_.num_train_steps), global_step_ / std::max(Seconds(start_), 1e-9),
                 s.name.c_str(), MeterOf("loss/" + s.name).val);
  }
  if (run_.on_step) run_.on_step(global_step_, o_.num_train_steps);
}

// perf/{task}_ex_per_s, _in_per_s, _loss_per_s: every rank's counts summed.
void Pretrainer::Perf() {
  const double secs = std::max(Seconds(start_), 1e-9);
  for (const auto& s : streams_) {
    std::vector<double> n = {s.n_examples, s.n_in_units, s.n_loss_units};
    if (dist_) n = dist_->AllReduceSum(n);
    Scalar("perf/" + s.name + "_ex_per_s", static_cast<double>(static_cast<int64_t>(n[0] / secs)), global_step_);
    Scalar("perf/" + s.name + "_in_per_s", static_cast<double>(static_cast<int64_t>(n[1] / secs)), global_step_);
    Scalar("perf/" + s.name + "_loss_per_s", static_cast<double>(static_cast<int64_t>(n[2] / secs)), global_step_);
  }
}

// validate(): every val task, tagged valid_{task}/{task}_{key}.
void Pretrainer::Validate() {
  model_->eval();
  result_.val.clear();
  for (auto& v : vals_) {
    const auto st = Clock::now();
    PretrainValSums s = ValidateSums(*model_, *v.data, v.batches, ctx_, *arena_);
    if (dist_) {
      const auto r = dist_->AllReduceSum({s.loss, s.correct, s.count, s.ot_pos, s.ot_neg});
      s.loss = r[0], s.correct = r[1], s.count = r[2], s.ot_pos = r[3], s.ot_neg = r[4];
    }
    PretrainValLog log = MakeValLog(v.name, v.data->task(), s, Seconds(st));
    for (const auto& [k, value] : log.values) Scalar("valid_" + v.name + "/" + v.name + "_" + k, value, global_step_);
    if (!run_.quiet) {
      std::fprintf(stderr, "step %lld: %s loss=%.6f", static_cast<long long>(global_step_), v.name.c_str(), log.loss);
      if (log.acc >= 0) std::fprintf(stderr, " acc=%.6f", log.acc);
      std::fputc('\n', stderr);
    }
    result_.val.push_back(std::move(log));
  }
  if (tb_) tb_->Flush();
  model_->train();
}

void Pretrainer::Checkpoint() {
  std::vector<std::string> rank_rngs;
  if (dist_) {
    const at::Tensor t = TorchRngState().contiguous();
    rank_rngs = dist_->GatherToRoot(std::string(static_cast<const char*>(t.data_ptr()), t.numel()));
  }
  if (rank_ != 0) return;
  SaveCheckpoint(*model_, o_.output_dir + "/ckpt/model_step_" + std::to_string(global_step_) + ".pt",
                 ctx_.amp == AmpMode::kFp16 ? at::kHalf : at::kFloat);
  SaveState(rank_rngs);
}

PretrainResult Pretrainer::Run() {
  const bool cuda = world_ > 1 && ResolveDevice(o_.device).is_cuda();
  dist_ = DistGroup::Create(env_, cuda, std::chrono::seconds(run_.dist_timeout_s));
  result_.rank = rank_;
  Prepare();
  if (dist_) dist_->StartTogether(o_.output_dir, resume_ ? global_step_ : -1, ModelTensors(*model_));
  if (rank_ == 0) {
    fs::create_directories(fs::path(o_.output_dir) / "log");
    fs::create_directories(fs::path(o_.output_dir) / "ckpt");
    if (!resume_) {
      WriteFileAtomic(o_.output_dir + "/log/hps.json", o_.hps_json);
      WriteFileAtomic(o_.output_dir + "/log/model.json", model_json_);
    }
    tb_ = std::make_unique<EventWriter>(o_.output_dir + "/log");
  }
  if (!run_.quiet && !run_.banner.empty()) std::fprintf(stderr, "%s\n", run_.banner.c_str());
  if (!run_.quiet) {
    std::fprintf(stderr, "pretrain: tasks");
    for (const auto& s : streams_) std::fprintf(stderr, " %s(x%d)", s.name.c_str(), s.mix_ratio);
    std::fprintf(stderr, ", %lld steps%s\n", static_cast<long long>(o_.num_train_steps),
                 resume_ ? (", resuming at step " + std::to_string(global_step_)).c_str() : "");
  }
  start_ = last_progress_ = Clock::now();
  if (global_step_ < o_.num_train_steps) {
    optimizer_->ZeroGrad();
    while (global_step_ < o_.num_train_steps) {
      TaskStream* group = nullptr;
      for (int i = 0; i < o_.gradient_accumulation_steps; ++i) {
        // The W global micro-batches of this round share the group's task.
        std::string name;
        for (int r = 0; r < world_; ++r) {
          const std::string& n = mixer_->Next(rng_);
          if (r == rank_) name = n;
        }
        group = &Stream(name);
        MicroBatch(*group);
      }
      Update(*group);
      if (global_step_ % o_.valid_steps == 0) {
        Validate();
        Checkpoint();
      }
    }
    if (global_step_ % o_.valid_steps != 0) {
      Validate();
      Checkpoint();
    }
  }
  if (tb_) tb_->Flush();
  if (dist_) dist_->Barrier();
  result_.global_step = global_step_;
  return result_;
}

}  // namespace

PretrainResult Pretrain(const PretrainOptions& options, const RunOptions& run) {
  const DistEnv env = ReadDistEnv();
  if (env.world_size <= 1) return Pretrainer(options, run, env).Run();
  try {
    return Pretrainer(options, run, env).Run();
  } catch (...) {
    RethrowNamingRank(env);
  }
}

}  // namespace uniter::trainer
