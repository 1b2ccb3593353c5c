// train_itm.py and train_itm_hard_negatives.py: the ranking head trained with
// sampled (or mined) negatives, UNITER's validate() (gt + the next
// inf_minibatch_size − 1 images) or, with full_val, the full evaluation, and
// the full val/test evaluation at the end. One process; no resume (ITM runs
// do not write the training state).
#include <ATen/ATen.h>
#include <torch/nn/modules/dropout.h>
#include <torch/utils.h>

#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
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

at::Tensor HardNegativeLoss(TaskModelImpl& m, Batch b, char from, int64_t hard_size, bool fix_uniter_quirks) {
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

class ItmTrainer {
 public:
  ItmTrainer(const TrainOptions& o, const RunOptions& run) : o_(o), run_(run) {}
  TrainResult Run();

 private:
  void Prepare();
  void StepRank(const std::vector<std::string>& txts);
  at::Tensor HardNegLoss(const std::string& txt, char from);
  void Backward(const at::Tensor& loss);
  void Update();
  void Validate();
  ItmMetrics Evaluate(const data::ItmDb& db, const std::string& split);
  void Log(const std::string& line) const {
    if (!run_.quiet) std::fprintf(stderr, "%s\n", line.c_str());
  }

  TrainOptions o_;
  RunOptions run_;
  std::vector<data::ItmDb> train_;
  std::unique_ptr<data::ItmDb> val_, test_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<optim::AdamW> optimizer_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<EventWriter> tb_;
  data::PyRandom rng_;
  int64_t global_step_ = 0, micro_ = 0, n_examples_ = 0;
  double loss_ema_ = 0;
  bool loss_set_ = false;
  TrainResult result_;
};

void ItmTrainer::Prepare() {
  std::error_code ec;
  if (fs::exists(o_.output_dir, ec) && !fs::is_empty(o_.output_dir, ec))
    throw UsageError("output_dir " + o_.output_dir + " is not empty (ITM runs start in a new or empty folder)");
  const UniterConfig config = UniterConfig::FromJsonFile(o_.model_config);
  const data::ImgDbOptions io = data::ImgDbOptionsOf(o_);
  const bool hard = o_.hard_neg_size > 0;
  for (size_t i = 0; i < o_.train_txt_dbs.size(); ++i)
    train_.push_back(data::OpenItmDb(o_.train_txt_dbs[i], o_.train_img_dbs[i], io, o_.max_txt_len, hard));
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
  if (!o_.checkpoint.empty()) model_->Load(o_.checkpoint);
  InitItmRankOutput(model_->module());  // the pretrained ITM head seeds the ranking head
  SetDropout(model_->module(), o_.dropout);
  model_->module().train();
  optimizer_ = MakeTaskOptimizer(model_->module(), TaskKind::kItm, o_);
  params_ = optimizer_->AllParams();

  for (const char* sub : {"log", "ckpt", "results_val", "results_test", "results_train"})
    fs::create_directories(fs::path(o_.output_dir) / sub);
  WriteFileAtomic(o_.output_dir + "/log/hps.json", o_.hps_json);
  WriteFileAtomic(o_.output_dir + "/log/model.json", ReadWholeFile(o_.model_config));
  tb_ = std::make_unique<EventWriter>(o_.output_dir + "/log");
}

void ItmTrainer::Backward(const at::Tensor& loss) {
  loss.backward();
  const double v = loss.item<double>();
  loss_ema_ = loss_set_ ? loss_ema_ * 0.99 + v * 0.01 : v;  // RunningMeter
  loss_set_ = true;
}

// One itm_rank_collate micro-batch of train_batch_size texts.
void ItmTrainer::StepRank(const std::vector<std::string>& txts) {
  Pairs pairs;
  const data::ItmDb& db = train_[0];
  for (const auto& t : txts) {
    const Pairs p = RankPairs(rng_, db, t, o_.negative_size);
    pairs.insert(pairs.end(), p.begin(), p.end());
  }
  Batch b = data::CollatePairs(db, pairs);
  b.sample_size = 1 + 2 * o_.negative_size;
  n_examples_ += b.input_ids.size(0);
  TaskModelImpl& m = model_->module();
  Backward(m.TrainLoss(m.Loss(m.Scores(b), b), b));
}

// UniterForImageTextRetrievalHardNeg.forward on one HardNegFrom{Text ('t'),
// Image ('i')} micro-batch: score gt + negative_size sampled candidates in
// eval mode, keep gt + the hard_neg_size best-scored, train on those.
at::Tensor ItmTrainer::HardNegLoss(const std::string& txt, char from) {
  const data::ItmDb& db = train_[0];
  const std::string& img = db.txt2img.at(txt);
  Pairs pairs{{txt, img}};
  if (from == 't') {
    for (const auto& neg : data::SampleNegative(rng_, db.img_names, {img}, o_.negative_size))
      pairs.emplace_back(txt, neg);
  } else {
    for (const auto& neg : data::SampleNegative(rng_, db.ids, db.img2txts.at(img), o_.negative_size))
      pairs.emplace_back(neg, img);
  }
  const Batch b = data::CollatePairs(db, pairs);
  n_examples_ += b.input_ids.size(0);
  return HardNegativeLoss(model_->module(), b, from, o_.hard_neg_size, o_.fix_uniter_quirks).mean() /
         static_cast<double>(o_.train_batch_size);
}

void ItmTrainer::Update() {
  ++global_step_;
  const double lr = optim::LrSched(global_step_, o_.learning_rate, o_.warmup_steps, o_.num_train_steps);
  optimizer_->SetLr(lr);
  tb_->AddScalar("lr", lr, global_step_);
  tb_->AddScalar("loss", loss_ema_, global_step_);
  optimizer_->RestoreZeroGrads();
  if (o_.grad_norm != -1) tb_->AddScalar("grad_norm", optim::ClipGradNorm(params_, o_.grad_norm), global_step_);
  optimizer_->Step();
  optimizer_->ZeroGrad();
  if (global_step_ % o_.valid_steps == 0) {
    if (o_.full_val) {
      const ItmMetrics m = Evaluate(*val_, "val");
      for (const auto& [k, v] : std::vector<std::pair<const char*, double>>{
               {"txt_r1", m.txt_r1}, {"txt_r5", m.txt_r5}, {"txt_r10", m.txt_r10}, {"img_r1", m.img_r1},
               {"img_r5", m.img_r5}, {"img_r10", m.img_r10}, {"r_mean", m.r_mean}})
        tb_->AddScalar(std::string("valid/") + k, v, global_step_);
    } else {
      Validate();
    }
    model_->Save(o_.output_dir + "/ckpt/model_step_" + std::to_string(global_step_) + ".pt");
  }
  if (!run_.quiet && global_step_ % 10 == 0)
    std::fprintf(stderr, "step %lld/%lld  loss %.4f\n", static_cast<long long>(global_step_),
                 static_cast<long long>(o_.num_train_steps), loss_ema_);
}

// train_itm.py's validate(): per val text, gt + the next inf_minibatch_size − 1
// images of img2txts.json's order (wrapping); recall of the gt in the top 10.
void ItmTrainer::Validate() {
  const data::ItmDb& db = *val_;
  const int64_t ni = static_cast<int64_t>(db.img_names.size()), bs = o_.inf_minibatch_size;
  std::map<std::string, int64_t> pos;
  for (int64_t j = 0; j < ni; ++j) pos.emplace(db.img_names[j], j);
  int64_t r[3] = {0, 0, 0};
  TaskModelImpl& m = model_->module();
  for (const std::string& t : db.ids) {
    const int64_t g = pos.at(db.txt2img.at(t));
    std::vector<std::string> imgs;
    for (int64_t k = 0; k < bs; ++k) imgs.push_back(db.img_names[(g + k) % ni]);
    const std::vector<float> s = ScoreMatrix(m, db, {t}, imgs, bs, false);
    // (indices == 0).nonzero() over topk(10): the gt's place, ties by index.
    int64_t place = 0;
    for (int64_t j = 1; j < bs; ++j) place += s[j] > s[0];
    for (int k = 0; k < 3; ++k) r[k] += place < (k == 0 ? 1 : k == 1 ? 5 : 10);
  }
  const double n = static_cast<double>(db.ids.size());
  tb_->AddScalar("valid/recall_1", r[0] / n, global_step_);
  tb_->AddScalar("valid/recall_5", r[1] / n, global_step_);
  tb_->AddScalar("valid/recall_10", r[2] / n, global_step_);
  tb_->Flush();
  Log("step " + std::to_string(global_step_) + ": recall_1=" + std::to_string(r[0] / n) +
      " recall_5=" + std::to_string(r[1] / n) + " recall_10=" + std::to_string(r[2] / n));
}

ItmMetrics ItmTrainer::Evaluate(const data::ItmDb& db, const std::string& split) {
  const std::vector<std::string> imgs = data::EvalImageOrder(db);
  const std::vector<float> s =
      RoundToHalf(ScoreMatrix(model_->module(), db, db.ids, imgs, o_.inf_minibatch_size, false));
  return ItmEval(s, db.ids, imgs, db.txt2img, db.img2txts, o_.fix_uniter_quirks, db.txt->dir() + " (" + split + ")");
}

TrainResult ItmTrainer::Run() {
  Prepare();
  if (train_.size() != 1) throw UsageError("ITM training takes one train_txt_db (ConcatDataset not supported yet)");
  const data::ItmDb& db = train_[0];
  const int64_t n = static_cast<int64_t>(db.ids.size());
  const bool hard = o_.hard_neg_size > 0;
  if (!hard && n < o_.train_batch_size)
    throw UsageError("train_batch_size " + std::to_string(o_.train_batch_size) + " exceeds the " +
                     std::to_string(n) + " training texts");
  Log("train itm: " + std::to_string(n) + " texts, " + std::to_string(db.img_names.size()) + " images, " +
      std::to_string(model_->NumParameters()) + " parameters" + (hard ? ", hard negatives" : ""));
  optimizer_->ZeroGrad();
  std::vector<int64_t> order_t, order_i;
  size_t at_t = 0, at_i = 0;
  auto next = [&](std::vector<int64_t>& order, size_t& at) {  // a reshuffled pass when one runs out
    if (at == order.size()) {
      order.resize(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      rng_.Shuffle(order);
      at = 0;
    }
    return db.ids[order[at++]];
  };
  while (global_step_ < o_.num_train_steps) {
    if (hard) {
      // One 'i' then one 't' micro-batch; train_batch_size of them per update.
      Backward(HardNegLoss(next(order_i, at_i), 'i'));
      Backward(HardNegLoss(next(order_t, at_t), 't'));
      if (++micro_ % o_.train_batch_size == 0) Update();
    } else {
      if (at_t + o_.train_batch_size > order_t.size()) at_t = order_t.size();  // drop_last
      std::vector<std::string> txts;
      for (int64_t k = 0; k < o_.train_batch_size; ++k) txts.push_back(next(order_t, at_t));
      StepRank(txts);
      if (++micro_ % o_.gradient_accumulation_steps == 0) Update();
    }
  }
  if (o_.num_train_steps % o_.valid_steps != 0) {
    Validate();
    model_->Save(o_.output_dir + "/ckpt/model_step_" + std::to_string(global_step_) + ".pt");
  }
  for (const auto& [name, db_ptr] : {std::pair<std::string, data::ItmDb*>{"val", val_.get()}, {"test", test_.get()}}) {
    const ItmMetrics m = Evaluate(*db_ptr, name);
    for (const auto& [k, v] : ItmMetricList(m)) {
      tb_->AddScalar("eval/" + name + "_" + k, v, global_step_);
      result_.metrics.emplace_back(name + "_" + k, v);
    }
    if (name == "val") result_.val_acc = m.r_mean;
  }
  tb_->Flush();
  result_.global_step = global_step_;
  return result_;
}

}  // namespace

TrainResult TrainItm(const TrainOptions& options, const RunOptions& run) { return ItmTrainer(options, run).Run(); }

}  // namespace uniter::trainer
