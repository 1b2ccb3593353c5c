// The pretraining run's data side (tasks over their dbs, batch loading) and
// pretrain.py's validate_mlm / validate_mrfr / validate_mrc / validate_itm,
// plus `--validate-only`.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/atomic_file.h"
#include "common/error.h"
#include "trainer/data/internal/pretrain_collate.h"
#include "trainer/data/token_bucket_sampler.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/pretrain_run.h"

namespace uniter::trainer {

data::DbPair PretrainDbs::Open(const std::string& txt, const std::string& img, bool train) {
  // create_dataloaders: training texts capped at max_txt_len, validation keeps all (-1).
  const std::string key = (train ? "train:" : "val:") + txt;
  auto& t = txt_[key];
  if (!t) t = std::make_shared<const data::TxtTokDb>(txt, train ? o_.max_txt_len : -1);
  auto& m = img_[img];
  if (!m) m = std::make_shared<const data::ImgFeatDb>(img, data::ImgDbOptionsOf(o_));
  return {t, m};
}

void CheckSameTokenizer(const PretrainOptions& o) {
  std::string first, first_db;
  for (const auto* sets : {&o.train_datasets, &o.val_datasets})
    for (const auto& d : *sets)
      for (const auto& db : d.db) {
        std::string bert;
        try {
          bert = nlohmann::json::parse(ReadWholeFile(db + "/meta.json")).value("bert", "");
        } catch (const nlohmann::json::exception& e) {
          throw FormatError(std::string("meta.json is not JSON: ") + e.what(), db);
        }
        if (first_db.empty()) first = bert, first_db = db;
        if (bert != first)
          throw UsageError("txt_dbs tokenized differently: " + first_db + " by '" + first + "', " + db + " by '" +
                           bert + "' (meta.json 'bert'; pretrain.py asserts they agree)");
      }
}

CaptionTaskData::CaptionTaskData(PretrainTask task, const std::vector<data::DbPair>& dbs, const PretrainOptions& o)
    : PretrainTaskData(task, task == PretrainTask::kItm && o.itm_ot_lambda > 0) {
  int64_t offset = 0;
  for (size_t j = 0; j < dbs.size(); ++j) {
    data::PretrainDataOptions d;
    d.task = task;
    d.mask_prob = o.mrm_prob;
    d.itm_neg_prob = o.itm_neg_prob;
    d.seed = j == 0 ? o.seed : data::ExampleSeed(o.seed, static_cast<int64_t>(j), -3);
    dbs_.push_back(std::make_unique<data::PretrainDataset>(dbs[j], d));
    offsets_.push_back(offset);
    offset += dbs_.back()->size();
  }
}

void CaptionTaskData::NewEpoch(int64_t epoch) {
  for (auto& d : dbs_) d->NewEpoch(epoch);
}

std::vector<int64_t> CaptionTaskData::Lens() const {
  std::vector<int64_t> lens;
  for (const auto& d : dbs_) lens.insert(lens.end(), d->lens().begin(), d->lens().end());
  return lens;
}

PretrainBatch CaptionTaskData::Load(const std::vector<int64_t>& indices, tbb::task_arena& arena) const {
  std::vector<data::PretrainExample> examples(indices.size());
  // Every example draws from its own seeded generator: the thread count cannot change a batch.
  arena.execute([&] {
    tbb::parallel_for(size_t{0}, indices.size(), [&](size_t k) {
      const int64_t g = indices[k];
      size_t j = offsets_.size() - 1;
      while (offsets_[j] > g) --j;
      examples[k] = dbs_[j]->Get(g - offsets_[j]);
    });
  });
  return data::CollatePretrain(task(), std::move(examples), ot());
}

std::unique_ptr<PretrainTaskData> MakeTaskData(PretrainDbs& dbs, const PretrainDatasetSpec& spec,
                                               const std::string& task, bool train, const PretrainOptions& o) {
  const PretrainTask t = ParsePretrainTask(task);
  if (o.vcr) return MakeVcrTaskData(dbs, spec, t, train, o);
  std::vector<data::DbPair> pairs;
  for (size_t j = 0; j < (train ? spec.db.size() : 1); ++j) pairs.push_back(dbs.Open(spec.db[j], spec.img[j], train));
  return std::make_unique<CaptionTaskData>(t, pairs, o);
}

PretrainBatch ToDevice(const PretrainBatch& p, const c10::Device& device, bool pin) {
  if (device.is_cpu()) return p;
  PretrainBatch o = p;
  o.batch = ToDevice(p.batch, device, pin);
  for (at::Tensor* t : {&o.txt_labels, &o.img_mask_tgt, &o.feat_targets, &o.label_targets, &o.ot_scatter,
                        &o.txt_pad, &o.img_pad})
    if (t->defined()) *t = (pin ? t->pin_memory() : *t).to(device, /*non_blocking=*/pin);
  return o;
}

std::vector<std::vector<int64_t>> ValBatches(PretrainTaskData& data, const PretrainOptions& o, int64_t index) {
  data.NewEpoch(1);
  data::TokenBucketOptions tb;
  tb.batch_size = o.val_batch_size;
  tb.droplast = false;
  data::PyRandom rng(data::ExampleSeed(o.seed, 1, -1000 - index));
  return data::TokenBucketSampler(data.Lens(), tb).Batches(rng);
}

namespace {

// compute_accuracy_for_soft_targets: argmax agreement.
double SoftAccuracy(const at::Tensor& out, const at::Tensor& labels) {
  return static_cast<double>(out.argmax(-1).eq(labels.argmax(-1)).sum().item<int64_t>());
}

void AddBatch(PretrainModelImpl& m, PretrainTask task, const PretrainBatch& b, PretrainValSums* s) {
  switch (task) {
    case PretrainTask::kMlm: {
      const at::Tensor scores = m.Scores(task, b).to(at::kFloat);
      const at::Tensor labels = b.txt_labels.index({b.txt_labels.ne(-1)});
      s->loss += at::cross_entropy_loss(scores, labels, {}, at::Reduction::Sum).item<double>();
      s->correct += static_cast<double>(scores.argmax(-1).eq(labels).sum().item<int64_t>());
      s->count += static_cast<double>(labels.numel());
      return;
    }
    case PretrainTask::kMrfr:
      // validate_mrfr: loss.sum() / IMG_DIM per batch.
      s->loss += m.Loss(task, b).loss.to(at::kFloat).sum().item<double>() / kPretrainImgDim;
      s->count += static_cast<double>(b.img_mask_tgt.sum().item<int64_t>());
      return;
    case PretrainTask::kMrcKl: {
      const at::Tensor logp = at::log_softmax(m.Scores(task, b).to(at::kFloat), -1);
      s->loss += at::kl_div(logp, b.label_targets, at::Reduction::Sum).item<double>();
      s->correct += SoftAccuracy(logp, b.label_targets);
      s->count += static_cast<double>(b.img_mask_tgt.sum().item<int64_t>());
      return;
    }
    case PretrainTask::kMrc: {
      // The branch UNITER meant: its code reads label_targets before defining it.
      const at::Tensor pred = m.Scores(task, b).to(at::kFloat);
      const at::Tensor target = std::get<1>(b.label_targets.slice(1, 1).max(-1)) + 1;
      s->loss += at::cross_entropy_loss(pred, target, {}, at::Reduction::Sum, /*ignore_index=*/0).item<double>();
      s->correct += SoftAccuracy(pred.slice(1, 1), b.label_targets.slice(1, 1));
      s->count += static_cast<double>(b.img_mask_tgt.sum().item<int64_t>());
      return;
    }
    case PretrainTask::kItm: {
      PretrainOutput ot;
      const at::Tensor scores = m.ItmScores(b, &ot).to(at::kFloat);
      const at::Tensor& targets = b.batch.targets;
      s->loss += at::cross_entropy_loss(scores, targets, {}, at::Reduction::Sum).item<double>();
      s->correct += static_cast<double>(scores.argmax(-1).eq(targets).sum().item<int64_t>());
      s->count += static_cast<double>(targets.size(0));
      if (ot.ot_pos.defined()) {
        s->ot = true;
        s->ot_pos += ot.ot_pos.to(at::kDouble).sum().item<double>();
        s->ot_neg += ot.ot_neg.to(at::kDouble).sum().item<double>();
      }
      return;
    }
  }
}

}  // namespace

PretrainValSums ValidateSums(PretrainModelImpl& model, const PretrainTaskData& data,
                             const std::vector<std::vector<int64_t>>& batches, const StepContext& ctx,
                             tbb::task_arena& arena) {
  PretrainValSums s;
  s.ot = data.ot();
  torch::NoGradGuard no_grad;
  for (const auto& indices : batches) {
    const PretrainBatch b = ToDevice(data.Load(indices, arena), ctx.device, ctx.pin);
    AutocastGuard autocast(ctx.amp, ctx.device);
    AddBatch(model, data.task(), b, &s);
  }
  return s;
}

PretrainValLog MakeValLog(const std::string& name, PretrainTask task, const PretrainValSums& s, double secs) {
  PretrainValLog log;
  log.task = name;
  const double n = s.count;
  log.loss = s.loss / n;  // UNITER divides unguarded; an empty val set gives nan as it would
  const double rate = n / std::max(secs, 1e-9);
  switch (task) {
    case PretrainTask::kMlm:
      log.acc = s.correct / n;
      log.values = {{"loss", log.loss}, {"acc", log.acc}, {"tok_per_s", rate}};
      break;
    case PretrainTask::kMrfr:
      log.values = {{"loss", log.loss}, {"feat_per_s", rate}};
      break;
    case PretrainTask::kMrc:
    case PretrainTask::kMrcKl:
      log.acc = s.correct / n;
      log.values = {{"loss", log.loss}, {"acc", log.acc}, {"feat_per_s", rate}};
      break;
    case PretrainTask::kItm:
      log.acc = s.correct / n;
      log.values = {{"valid/loss", log.loss}, {"valid/acc", log.acc}, {"valid/ex_per_s", rate}};
      if (s.ot) {
        log.values.emplace_back("valid/ot_loss", (s.ot_pos - s.ot_neg) / n);
        log.values.emplace_back("valid/ot_pos", s.ot_pos / n);
        log.values.emplace_back("valid/ot_neg", s.ot_neg / n);
      }
      break;
  }
  return log;
}

PretrainModel MakePretrainModel(const PretrainOptions& o, std::string* model_json) {
  const UniterConfig config = UniterConfig::FromJsonFile(o.model_config);
  if (model_json) *model_json = ReadWholeFile(o.model_config);
  // LibTorch's init draws from the default generator, seeded as set_random_seed does.
  at::manual_seed(o.seed);
  return PretrainModel(config, kPretrainImgDim, kPretrainImgLabelDim);
}

std::vector<PretrainValLog> ValidatePretrain(const PretrainOptions& o, const std::string& checkpoint,
                                             const RunOptions& run) {
  PretrainDbs dbs(o);
  CheckSameTokenizer(o);
  std::vector<std::pair<std::string, std::unique_ptr<PretrainTaskData>>> tasks;
  for (const auto& d : o.val_datasets)
    for (const auto& t : d.tasks)
      tasks.emplace_back(t + "_" + d.name, MakeTaskData(dbs, d, t, false, o));
  PretrainModel model = MakePretrainModel(o, nullptr);
  if (o.vcr) model->ExpandForVcr(kVcrSpecialTokens);  // a VCR-pretrained checkpoint has the expanded shapes
  const LoadReport report = LoadCheckpoint(*model, checkpoint);
  if (!run.quiet && !report.missing.empty())
    std::fprintf(stderr, "pretrain: %zu parameters not in %s (kept as initialised), e.g. %s\n", report.missing.size(),
                 checkpoint.c_str(), report.missing[0].c_str());
  StepContext ctx;
  ctx.device = ResolveDevice(o.device);
  ctx.amp = ResolvePrecision(o.fp16, o.amp_dtype, ctx.device).mode;
  model->to(ctx.device);
  model->eval();
  tbb::task_arena arena(std::max(1, o.n_workers));
  std::vector<PretrainValLog> logs;
  for (size_t k = 0; k < tasks.size(); ++k) {
    auto& [name, data] = tasks[k];
    const auto st = std::chrono::steady_clock::now();
    const PretrainValSums s = ValidateSums(*model, *data, ValBatches(*data, o, static_cast<int64_t>(k)), ctx, arena);
    logs.push_back(MakeValLog(name, data->task(), s,
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - st).count()));
  }
  return logs;
}

}  // namespace uniter::trainer
