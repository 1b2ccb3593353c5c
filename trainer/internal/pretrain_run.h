// What the pretraining loop (pretrain_loop.cc) and its validation
// (pretrain_eval.cc) share: a task's data over its dbs, batch loading, and
// pretrain.py's validate_* sums.
#pragma once

#include <ATen/core/Tensor.h>
#include <tbb/task_arena.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/data/pretrain_datasets.h"
#include "trainer/internal/pretrain_batch.h"
#include "trainer/internal/pretrain_model.h"
#include "trainer/internal/train_step.h"
#include "trainer/pretrain.h"

namespace uniter::trainer {

constexpr int64_t kPretrainImgDim = 2048;       // utils/const.py IMG_DIM
constexpr int64_t kPretrainImgLabelDim = 1601;  // IMG_LABEL_DIM

namespace data {
class VcrTxtDb;
struct VcrImgDbs;
}  // namespace data

// The open dbs, shared by every task reading them (UNITER's ImageLmdbGroup).
class PretrainDbs {
 public:
  explicit PretrainDbs(const PretrainOptions& o) : o_(o) {}
  data::DbPair Open(const std::string& txt, const std::string& img, bool train);
  // VCR (pretrain_vcr.cc): the txt_db read for `vcr_task` ("qa" / "qar"),
  // the img entry "gt_dir;det_dir" as load_img_feat opens it.
  std::shared_ptr<const data::VcrTxtDb> OpenVcrTxt(const std::string& txt, bool train, const std::string& vcr_task);
  std::shared_ptr<const data::VcrImgDbs> OpenVcrImg(const std::string& img);

 private:
  const PretrainOptions& o_;
  std::map<std::string, std::shared_ptr<const data::TxtTokDb>> txt_;
  std::map<std::string, std::shared_ptr<const data::ImgFeatDb>> img_;
  std::map<std::string, std::shared_ptr<const data::VcrTxtDb>> vcr_txt_;
  std::map<std::string, std::shared_ptr<const data::VcrImgDbs>> vcr_img_;
};

// pretrain.py's check that every txt_db's meta.json names the same `bert`
// tokenizer; UsageError naming two that differ. Call once the dbs opened.
void CheckSameTokenizer(const PretrainOptions& o);

// One task's data over its dbs, concatenated in order (ConcatDatasetWithLens).
class PretrainTaskData {
 public:
  explicit PretrainTaskData(PretrainTask task, bool ot = false) : task_(task), ot_(ot) {}
  virtual ~PretrainTaskData() = default;

  PretrainTask task() const { return task_; }
  bool ot() const { return ot_; }  // ITM collates ot_inputs (itm_ot_lambda > 0)
  virtual void NewEpoch(int64_t epoch) = 0;
  virtual std::vector<int64_t> Lens() const = 0;
  // The collated batch of examples `indices` (read on `arena`'s threads).
  virtual PretrainBatch Load(const std::vector<int64_t>& indices, tbb::task_arena& arena) const = 0;

 private:
  PretrainTask task_;
  bool ot_ = false;
};

// pretrain.py's caption data: one task over its (txt_db, img_db) pairs. Db
// j > 0 draws from seed ExampleSeed(seed, j, −3) so that its examples are not
// masked as db 0's same-index ones.
class CaptionTaskData : public PretrainTaskData {
 public:
  CaptionTaskData(PretrainTask task, const std::vector<data::DbPair>& dbs, const PretrainOptions& o);

  void NewEpoch(int64_t epoch) override;
  std::vector<int64_t> Lens() const override;
  PretrainBatch Load(const std::vector<int64_t>& indices, tbb::task_arena& arena) const override;

 private:
  std::vector<std::unique_ptr<data::PretrainDataset>> dbs_;
  std::vector<int64_t> offsets_;  // first global index of each db
};

// Task `task` (one of spec.tasks) of a train (all of spec.db) or val (db[0])
// dataset: CaptionTaskData, or with options.vcr the VCR data of
// pretrain_vcr.cc.
std::unique_ptr<PretrainTaskData> MakeTaskData(PretrainDbs& dbs, const PretrainDatasetSpec& spec,
                                               const std::string& task, bool train, const PretrainOptions& o);

// pretrain_vcr.py's create_dataloaders for one task: per db, VcrPretrainDataset
// over the txt_db read as QAR (fix_uniter_quirks: QA then QAR, concatenated),
// train texts capped at max_txt_len, val ones not. Part k > 0 draws from
// seed ExampleSeed(seed, k, −3).
std::unique_ptr<PretrainTaskData> MakeVcrTaskData(PretrainDbs& dbs, const PretrainDatasetSpec& spec,
                                                  PretrainTask task, bool train, const PretrainOptions& o);

// A copy with every tensor on `device`.
PretrainBatch ToDevice(const PretrainBatch& p, const c10::Device& device, bool pin);

// One validate_* pass's sums over this process's batches (all-reduced by the caller).
struct PretrainValSums {
  double loss = 0;     // summed as UNITER sums it
  double correct = 0;  // mlm / mrc / itm
  double count = 0;    // n_word / n_feat / n_ex
  double ot_pos = 0, ot_neg = 0;
  bool ot = false;     // itm with OT
};

PretrainValSums ValidateSums(PretrainModelImpl& model, const PretrainTaskData& data,
                             const std::vector<std::vector<int64_t>>& batches, const StepContext& ctx,
                             tbb::task_arena& arena);

// val_log from the (reduced) sums and the seconds it took.
PretrainValLog MakeValLog(const std::string& name, PretrainTask task, const PretrainValSums& s, double secs);

// The validation batches of `data` (epoch 1: the same masks and negatives at
// every validation), val_batch_size tokens, all of them (no droplast).
std::vector<std::vector<int64_t>> ValBatches(PretrainTaskData& data, const PretrainOptions& o, int64_t index);

// UniterForPretraining seeded as set_random_seed + from_pretrained do.
PretrainModel MakePretrainModel(const PretrainOptions& o, std::string* model_json);

// pretrain_vcr.py's NUM_SPECIAL_TOKENS: the word rows ExpandForVcr adds.
constexpr int64_t kVcrSpecialTokens = 81;

}  // namespace uniter::trainer
