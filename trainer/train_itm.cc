// train_itm.py and train_itm_hard_negatives.py: the ranking head trained with
// sampled (or mined) negatives, UNITER's validate() (gt + the next
// inf_minibatch_size − 1 images) or, with full_val, the full evaluation, and
// the full val/test evaluation at the end. Resumable (trainer/internal/
// task_state.h) and multi-process (see ItmTrainer).
#include <ATen/ATen.h>
#include <torch/nn/modules/dropout.h>
#include <torch/utils.h>

#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "trainer/dist.h"
#include "trainer/internal/batch_dump.h"
#include "trainer/internal/dist_group.h"
#include "trainer/internal/running_meter.h"
#include "trainer/internal/task_state.h"
#include "trainer/internal/train_step.h"
#include "trainer/internal/itm_run.h"
#include "trainer/itm_eval.h"
#include "trainer/optim/internal/adamw.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/tensorboard.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using Pairs = std::vector<std::pair<std::string, std::string>>;


// ItmRankDataset.__getitem__: (t, i_gt), (t, neg image)×k, (neg text, i_gt)×k.
Pairs RankPairs(data::PyRandom& rng, const data::ItmDb& db, const std::string& txt, int64_t k) {
  const std::string& img = db.txt2img.at(txt);
  Pairs p{{txt, img}};
  for (const auto& neg : data::SampleNegative(rng, db.img_names, {img}, k)) p.emplace_back(txt, neg);
  for (const auto& neg : data::SampleNegative(rng, db.ids, db.img2txts.at(img), k)) p.emplace_back(neg, img);
  return p;
}

// Rows `idx` of every per-row tensor of `b` (input_ids too when it is per row).
Batch SelectRows(const Batch& b, const at::Tensor& idx) {
  Batch h = b;
  h.input_ids = b.input_ids.index_select(0, idx);
  h.img_feat = b.img_feat.index_select(0, idx);
  h.img_pos_feat = b.img_pos_feat.index_select(0, idx);
  h.attn_masks = b.attn_masks.index_select(0, idx);
  h.gather_index = b.gather_index.index_select(0, idx);
  h.sample_size = idx.size(0);
  h.num_examples = 1;
  return h;
}

}  // namespace

at::Tensor HardNegativeLoss(TaskModelImpl& m, Batch b, char from, int64_t hard_size, bool fix_uniter_quirks,
                            Batch* fed) {
  if (from != 't' && from != 'i') throw UsageError("sample_from must be 't' or 'i'");
  if (from == 'i' && !fix_uniter_quirks) {
    // ItmRankDatasetHardNegFromImage: get_gather_index(txt_lens, ..., tl, ...)
    // with `tl` left over from its loop — the last text's length — so image
    // slots read from that offset (text slots when that text is shorter).
    b.gather_index = b.gather_index.clone();
    const at::Tensor tl = b.attn_masks.sum(1) - b.img_feat.size(1);
    const int64_t last = tl[-1].item<int64_t>();
    int64_t* gi = b.gather_index.data_ptr<int64_t>();
    const int64_t out = b.gather_index.size(1), nbb = b.img_feat.size(1);
    for (int64_t r = 0; r < b.gather_index.size(0); ++r) {
      const int64_t t = tl[r].item<int64_t>();
      for (int64_t k = 0; k < nbb && t + k < out; ++k) gi[r * out + t + k] = last + k;
    }
  }
  if (fed) *fed = b;
  at::Tensor idx;
  {
    torch::NoGradGuard no_grad;
    const bool was_training = m.is_training();
    m.eval();
    const at::Tensor s = m.Scores(b).squeeze(-1);
    const at::Tensor hard = std::get<1>(s.slice(0, 1).topk(hard_size, 0, true, false)) + 1;
    idx = at::cat({at::zeros({1}, at::kLong), hard});
    if (was_training) m.train();
  }
  Batch h = SelectRows(b, idx);
  if (from == 't') {  // cut to the minimum padding
    const int64_t max_len = h.attn_masks.sum(1).max().item<int64_t>();
    const int64_t max_i = max_len - h.input_ids.size(1);
    h.attn_masks = h.attn_masks.slice(1, 0, max_len);
    h.gather_index = h.gather_index.slice(1, 0, max_len);
    h.img_feat = h.img_feat.slice(1, 0, max_i);
    h.img_pos_feat = h.img_pos_feat.slice(1, 0, max_i);
  }
  return m.Loss(m.Scores(h), h);
}

namespace {

// Multi-process runs draw one global stream of micro-batches (texts and
// their negatives from the one seeded generator, identical on every rank);
// global micro-batch g is rank g % W's. Each rank mines its hard negatives
// within its own micro-batches (UNITER's forward is per rank), and the
// gradients are all-reduced at the update (grad_reduce). W ranks thus take
// what one process takes accumulating W times as many micro-batches.
class ItmTrainer {
 public:
  ItmTrainer(const TrainOptions& o, const RunOptions& run, const DistEnv& env)
      : o_(o), run_(run), rank_(env.rank), world_(env.world_size) {
    if (rank_ != 0) run_.quiet = true;  // rank 0 speaks for the run
    dump_ = BatchDumper(run.dump_batches_dir, rank_ == 0 ? run.dump_batches : 0);
    dist_ = DistGroup::Create(env, false, std::chrono::seconds(run_.dist_timeout_s));
  }
  TrainResult Run();

 private:
  void Prepare();
  void Restore();
  void SyncModel();
  void Checkpoint();
  int64_t Next(std::vector<int64_t>& order, size_t& at);
  // ConcatDataset over train_: text g of the concatenation is in train_[DbOf(g)].
  int64_t TotalTexts() const { return offsets_.back(); }
  size_t DbOf(int64_t g) const {
    return static_cast<size_t>(std::upper_bound(offsets_.begin(), offsets_.end(), g) - offsets_.begin()) - 1;
  }
  const std::string& IdOf(int64_t g) const { return train_[DbOf(g)].ids[g - offsets_[DbOf(g)]]; }
  Pairs HardNegPairs(int64_t g, char from);
  void StepRank(const Pairs& pairs, const std::vector<const data::ItmDb*>& row_dbs);
  at::Tensor HardNegLoss(const Pairs& pairs, char from, const data::ItmDb& db);
  void Backward(const at::Tensor& loss);
  void Update();
  void Validate();
  ItmMetrics Evaluate(const data::ItmDb& db, const std::string& split);
  bool Mine() const { return micro_ % world_ == rank_; }
  void Scalar(const std::string& tag, double v) {
    if (tb_) tb_->AddScalar(tag, v, global_step_);
  }
  void Log(const std::string& line) const {
    if (!run_.quiet) std::fprintf(stderr, "%s\n", line.c_str());
  }

  TrainOptions o_;
  RunOptions run_;
  int rank_ = 0, world_ = 1;
  std::unique_ptr<DistGroup> dist_;
  std::string model_json_;
  std::optional<SavedState> resume_;
  std::vector<data::ItmDb> train_;
  std::vector<int64_t> offsets_{0};  // texts before each train db; the total last
  std::unique_ptr<data::ItmDb> val_, test_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<optim::AdamW> optimizer_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<EventWriter> tb_;
  data::PyRandom rng_;
  // The text orders ('t' and, with hard negatives, 'i') and the place in each.
  std::vector<int64_t> order_t_, order_i_;
  size_t at_t_ = 0, at_i_ = 0;
  int64_t global_step_ = 0, micro_ = 0, n_examples_ = 0;
  RunningMeter loss_;  // this rank's
  TrainResult result_;
  BatchDumper dump_;  // --dump-batches
};

void ItmTrainer::Prepare() {
  model_json_ = ReadWholeFile(o_.model_config);
  resume_ = StateToResume(o_.output_dir, o_.hps_json, model_json_);
  const UniterConfig config = UniterConfig::FromJsonFile(o_.model_config);
  const data::ImgDbOptions io = data::ImgDbOptionsOf(o_);
  const bool hard = o_.hard_neg_size > 0;
  for (size_t i = 0; i < o_.train_txt_dbs.size(); ++i) {
    train_.push_back(data::OpenItmDb(o_.train_txt_dbs[i], o_.train_img_dbs[i], io, o_.max_txt_len, hard));
    offsets_.push_back(offsets_.back() + static_cast<int64_t>(train_.back().ids.size()));
  }
  val_ = std::make_unique<data::ItmDb>(data::OpenItmDb(o_.val_txt_db, o_.val_img_db, io, -1, true));
  test_ = std::make_unique<data::ItmDb>(data::OpenItmDb(o_.test_txt_db, o_.test_img_db, io, -1, true));
  for (const data::ItmDb* db : {val_.get(), test_.get()})
    if (static_cast<int64_t>(db->img_names.size()) < o_.inf_minibatch_size)
      throw UsageError(db->txt->dir() + ": " + std::to_string(db->img_names.size()) +
                       " images, fewer than inf_minibatch_size " + std::to_string(o_.inf_minibatch_size));
  rng_.Seed(o_.seed);
  TaskOptions to;
  to.task = TaskKind::kItm;
  to.margin = o_.margin;
  model_ = std::make_unique<Model>(config, to, o_.seed);
  // A resumed run gets every weight from its state (the init file may be gone).
  if (!o_.checkpoint.empty() && !resume_) model_->Load(o_.checkpoint);
  InitItmRankOutput(model_->module());  // the pretrained ITM head seeds the ranking head
  SetDropout(model_->module(), o_.dropout);
  model_->module().train();
  optimizer_ = MakeTaskOptimizer(model_->module(), TaskKind::kItm, o_);
  params_ = optimizer_->AllParams();
  if (resume_) Restore();
  SyncModel();
  if (rank_ != 0) return;
  for (const char* sub : {"log", "ckpt", "results_val", "results_test", "results_train"})
    fs::create_directories(fs::path(o_.output_dir) / sub);
  if (!resume_) {
    WriteFileAtomic(o_.output_dir + "/log/hps.json", o_.hps_json);
    WriteFileAtomic(o_.output_dir + "/log/model.json", model_json_);
  }
  tb_ = std::make_unique<EventWriter>(o_.output_dir + "/log");
}

// The weights, AdamW, generators, text orders and counters of the newest state.
void ItmTrainer::Restore() {
  RestoredState s = RestoreTaskState(*resume_, model_->module(), *optimizer_, rank_, world_, o_.output_dir);
  const std::string& where = resume_->tensors_path;
  auto extra = [&](const std::string& key) -> const at::Tensor& {
    auto it = s.extra.find(key);
    if (it == s.extra.end()) throw FormatError("key '" + key + "' is missing", where);
    return it->second;
  };
  rng_.SetState(PyRandomStateFrom(extra("rng.python"), where));
  order_t_ = Int64Vector(extra("itm.order_t"), "itm.order_t", where);
  order_i_ = Int64Vector(extra("itm.order_i"), "itm.order_i", where);
  const nlohmann::json& l = s.loop;
  global_step_ = l.at("global_step").get<int64_t>();
  micro_ = l.at("micro").get<int64_t>();
  at_t_ = l.at("at_t").get<size_t>();
  at_i_ = l.at("at_i").get<size_t>();
  n_examples_ = l.at("n_examples").get<int64_t>();
  loss_.val = l.at("loss_ema").get<double>();
  loss_.set = l.at("loss_set").get<bool>();
  const int64_t n = TotalTexts();
  for (const auto* order : {&order_t_, &order_i_})
    for (int64_t i : *order)
      if (i < 0 || i >= n) throw FormatError("a text order entry is outside the training db", where);
  if (at_t_ > order_t_.size() || at_i_ > order_i_.size())
    throw FormatError("a text order position is past its order", where);
  Log("train itm: resuming at step " + std::to_string(global_step_) + " from " + where);
}

// UNITER's broadcast_tensors(params, 0), after every rank found the same
// output_dir state.
void ItmTrainer::SyncModel() {
  if (!dist_) return;
  dist_->StartTogether(o_.output_dir, resume_ ? global_step_ : -1, ModelTensors(model_->module()));
}

// UNITER's checkpoint (rank 0) and the training state to resume from it,
// with every rank's torch generator.
void ItmTrainer::Checkpoint() {
  std::vector<std::string> rank_rngs;
  if (dist_) rank_rngs = dist_->GatherToRoot(TorchRngBytes());
  if (rank_ != 0) return;
  model_->Save(o_.output_dir + "/ckpt/model_step_" + std::to_string(global_step_) + ".pt");
  StateDict extra = {{"rng.python", PyRandomStateTensor(rng_.GetState())},
                     {"itm.order_t", Int64Tensor(order_t_)},
                     {"itm.order_i", Int64Tensor(order_i_)}};
  nlohmann::json loop = {{"global_step", global_step_}, {"micro", micro_},         {"at_t", at_t_},
                         {"at_i", at_i_},               {"n_examples", n_examples_}, {"loss_ema", loss_.val},
                         {"loss_set", loss_.set}};
  SaveTaskState(o_.output_dir, global_step_, model_->module(), *optimizer_, rank_rngs, std::move(extra),
                std::move(loop), world_, o_.hps_json, model_json_);
}

void ItmTrainer::Backward(const at::Tensor& loss) {
  loss.backward();
  const double v = loss.item<double>();
  loss_.Add(v);
}

// The next text (its index in the concatenation) of `order`, a reshuffled
// pass over every training db's texts when it runs out.
int64_t ItmTrainer::Next(std::vector<int64_t>& order, size_t& at) {
  if (at == order.size()) {
    order.resize(TotalTexts());
    std::iota(order.begin(), order.end(), 0);
    rng_.Shuffle(order);
    at = 0;
  }
  return order[at++];
}

// One itm_rank_collate micro-batch of train_batch_size texts.
void ItmTrainer::StepRank(const Pairs& pairs, const std::vector<const data::ItmDb*>& row_dbs) {
  Batch b = data::CollatePairs(row_dbs, pairs);
  b.sample_size = 1 + 2 * o_.negative_size;
  n_examples_ += b.input_ids.size(0);
  TaskModelImpl& m = model_->module();
  const at::Tensor loss = m.TrainLoss(m.Loss(m.Scores(b), b), b);
  if (dump_.Wants()) dump_.Dump(dump_.NextStem(), BatchArrays(b, TaskKind::kItm), loss.item<double>());
  Backward(loss);
}

// A HardNegFrom{Text ('t'), Image ('i')} micro-batch's pairs: gt first, then
// negative_size sampled images ('t') or texts ('i').
// Negatives come from the text's own db, as each ItmRankDataset samples its own.
Pairs ItmTrainer::HardNegPairs(int64_t g, char from) {
  const data::ItmDb& db = train_[DbOf(g)];
  const std::string& txt = IdOf(g);
  const std::string& img = db.txt2img.at(txt);
  Pairs pairs{{txt, img}};
  if (from == 't') {
    for (const auto& neg : data::SampleNegative(rng_, db.img_names, {img}, o_.negative_size))
      pairs.emplace_back(txt, neg);
  } else {
    for (const auto& neg : data::SampleNegative(rng_, db.ids, db.img2txts.at(img), o_.negative_size))
      pairs.emplace_back(neg, img);
  }
  return pairs;
}

// UniterForImageTextRetrievalHardNeg.forward on one micro-batch: score gt +
// the candidates in eval mode, keep gt + the hard_neg_size best-scored,
// train on those.
at::Tensor ItmTrainer::HardNegLoss(const Pairs& pairs, char from, const data::ItmDb& db) {
  const Batch b = data::CollatePairs(db, pairs);
  n_examples_ += b.input_ids.size(0);
  Batch fed;
  const at::Tensor loss = HardNegativeLoss(model_->module(), b, from, o_.hard_neg_size, o_.fix_uniter_quirks,
                                           dump_.Wants() ? &fed : nullptr).mean();
  // The mean over the kept rows, before train_itm_hard_negatives.py's / train_batch_size.
  if (dump_.Wants()) dump_.Dump(dump_.NextStem() + "_" + from, ItmHardNegArrays(fed), loss.item<double>());
  return loss / static_cast<double>(o_.train_batch_size);
}

void ItmTrainer::Update() {
  if (dist_) {
    optimizer_->RestoreZeroGrads();  // every rank reduces the same grads
    dist_->AllReduceGrads(params_, o_.grad_reduce == "mean");
  }
  ++global_step_;
  const double lr = optim::LrSched(global_step_, o_.learning_rate, o_.warmup_steps, o_.num_train_steps);
  optimizer_->SetLr(lr);
  Scalar("lr", lr);
  Scalar("loss", loss_.val);
  optimizer_->RestoreZeroGrads();
  if (o_.grad_norm != -1) {
    const double norm = optim::ClipGradNorm(params_, o_.grad_norm);
    Scalar("grad_norm", norm);
  }
  optimizer_->Step();
  optimizer_->ZeroGrad();
  if (global_step_ % o_.valid_steps == 0) {
    if (o_.full_val) {
      const ItmMetrics m = Evaluate(*val_, "val");
      for (const auto& [k, v] : std::vector<std::pair<const char*, double>>{
               {"txt_r1", m.txt_r1}, {"txt_r5", m.txt_r5}, {"txt_r10", m.txt_r10}, {"img_r1", m.img_r1},
               {"img_r5", m.img_r5}, {"img_r10", m.img_r10}, {"r_mean", m.r_mean}})
        Scalar(std::string("valid/") + k, v);
    } else {
      Validate();
    }
    Checkpoint();
  }
  if (!run_.quiet && global_step_ % 10 == 0)
    std::fprintf(stderr, "step %lld/%lld  loss %.4f\n", static_cast<long long>(global_step_),
                 static_cast<long long>(o_.num_train_steps), loss_.val);
}

// train_itm.py's validate(): per val text, gt + the next inf_minibatch_size − 1
// images of img2txts.json's order (wrapping); recall of the gt in the top 10.
// Ranks take every W-th text and sum their counts.
void ItmTrainer::Validate() {
  const data::ItmDb& db = *val_;
  const int64_t ni = static_cast<int64_t>(db.img_names.size()), bs = o_.inf_minibatch_size;
  std::map<std::string, int64_t> pos;
  for (int64_t j = 0; j < ni; ++j) pos.emplace(db.img_names[j], j);
  std::vector<double> r = {0, 0, 0};
  TaskModelImpl& m = model_->module();
  for (size_t i = rank_; i < db.ids.size(); i += world_) {
    const std::string& t = db.ids[i];
    const int64_t g = pos.at(db.txt2img.at(t));
    std::vector<std::string> imgs;
    for (int64_t k = 0; k < bs; ++k) imgs.push_back(db.img_names[(g + k) % ni]);
    const std::vector<float> s = ScoreMatrix(m, db, {t}, imgs, bs, false);
    // (indices == 0).nonzero() over topk(10): the gt's place, ties by index.
    int64_t place = 0;
    for (int64_t j = 1; j < bs; ++j) place += s[j] > s[0];
    for (int k = 0; k < 3; ++k) r[k] += place < (k == 0 ? 1 : k == 1 ? 5 : 10);
  }
  if (dist_) r = dist_->AllReduceSum(r);
  const double n = static_cast<double>(db.ids.size());
  Scalar("valid/recall_1", r[0] / n);
  Scalar("valid/recall_5", r[1] / n);
  Scalar("valid/recall_10", r[2] / n);
  if (tb_) tb_->Flush();
  Log("step " + std::to_string(global_step_) + ": recall_1=" + std::to_string(r[0] / n) +
      " recall_5=" + std::to_string(r[1] / n) + " recall_10=" + std::to_string(r[2] / n));
}

// The full evaluation; the metrics on rank 0 (zeros elsewhere).
ItmMetrics ItmTrainer::Evaluate(const data::ItmDb& db, const std::string& split) {
  const std::vector<std::string> imgs = data::EvalImageOrder(db);
  const std::vector<float> s = ShardedScoreMatrix(model_->module(), db, db.ids, imgs, o_.inf_minibatch_size, false,
                                                  dist_.get());
  if (rank_ != 0) return {};
  return ItmEval(RoundToHalf(s), db.ids, imgs, db.txt2img, db.img2txts, o_.fix_uniter_quirks,
                 db.txt->dir() + " (" + split + ")");
}

TrainResult ItmTrainer::Run() {
  result_.rank = rank_;
  Prepare();
  const int64_t n = TotalTexts();
  size_t images = 0;
  for (const data::ItmDb& db : train_) images += db.img_names.size();
  const bool hard = o_.hard_neg_size > 0;
  if (!hard && n < o_.train_batch_size)
    throw UsageError("train_batch_size " + std::to_string(o_.train_batch_size) + " exceeds the " +
                     std::to_string(n) + " training texts");
  Log("train itm: " + std::to_string(n) + " texts, " + std::to_string(images) + " images in " + std::to_string(train_.size()) +
      " db(s), " +
      std::to_string(model_->NumParameters()) + " parameters" + (hard ? ", hard negatives" : "") +
      (world_ > 1 ? ", " + std::to_string(world_) + " processes" : ""));
  optimizer_->ZeroGrad();
  while (global_step_ < o_.num_train_steps) {
    if (hard) {
      // One 'i' then one 't' micro-batch; train_batch_size of them per rank per update.
      const int64_t gi = Next(order_i_, at_i_);
      const Pairs pi = HardNegPairs(gi, 'i');
      const int64_t gt = Next(order_t_, at_t_);
      const Pairs pt = HardNegPairs(gt, 't');
      if (Mine()) {
        Backward(HardNegLoss(pi, 'i', train_[DbOf(gi)]));
        Backward(HardNegLoss(pt, 't', train_[DbOf(gt)]));
      }
      if (++micro_ % (o_.train_batch_size * world_) == 0) Update();
    } else {
      if (at_t_ + o_.train_batch_size > order_t_.size()) at_t_ = order_t_.size();  // drop_last
      std::vector<int64_t> txts;
      for (int64_t k = 0; k < o_.train_batch_size; ++k) txts.push_back(Next(order_t_, at_t_));
      Pairs pairs;
      std::vector<const data::ItmDb*> row_dbs;
      for (const int64_t g : txts) {
        const data::ItmDb& db = train_[DbOf(g)];
        const Pairs p = RankPairs(rng_, db, IdOf(g), o_.negative_size);
        pairs.insert(pairs.end(), p.begin(), p.end());
        row_dbs.insert(row_dbs.end(), p.size(), &db);
      }
      if (Mine()) StepRank(pairs, row_dbs);
      if (++micro_ % (o_.gradient_accumulation_steps * world_) == 0) Update();
    }
  }
  if (o_.num_train_steps % o_.valid_steps != 0) {
    Validate();
    Checkpoint();
  }
  for (const auto& [name, db_ptr] : {std::pair<std::string, data::ItmDb*>{"val", val_.get()}, {"test", test_.get()}}) {
    const ItmMetrics m = Evaluate(*db_ptr, name);
    for (const auto& [k, v] : ItmMetricList(m)) {
      if (tb_) tb_->AddScalar("eval/" + name + "_" + k, v, global_step_);
      result_.metrics.emplace_back(name + "_" + k, v);
    }
    if (name == "val") result_.val_acc = m.r_mean;
  }
  if (tb_) tb_->Flush();
  if (dist_) dist_->Barrier();  // rank 0 hosts the store: the others leave first
  result_.global_step = global_step_;
  return result_;
}

}  // namespace

TrainResult TrainItm(const TrainOptions& options, const RunOptions& run) {
  const DistEnv env = ReadDistEnv();
  if (env.world_size <= 1) return ItmTrainer(options, run, env).Run();
  try {
    return ItmTrainer(options, run, env).Run();
  } catch (...) {
    RethrowNamingRank(env);  // "rank 1 of 2: ..." from every process
  }
}

}  // namespace uniter::trainer
