// VCR second-stage pretraining data (UNITER's data/pretrain_vcr.py:
// MlmDatasetForVCR, MrfrDatasetForVCR, MrcDatasetForVCR and their collates,
// as pretrain_vcr.py builds them): one VCR txt_db read for task "qa" or "qar",
// its text the question, the right answer and (qar) the right rationale with
// VCR's type ids (0 question, 2 answer, 3 rationale; the [SEP]s between them
// 0 then 2), over the gt and detected img_dbs of one "gt_dir;det_dir" string,
// their boxes concatenated gt first.
//
// Randomness as PretrainDataset's: example i of epoch e draws from Python's
// generator seeded with ExampleSeed(seed, e, i) — MLM random_word over the
// question, then the answer, then the rationale (each with its own "at least
// one" rule, as UNITER calls it per segment); MRFR / MRC one _get_img_mask
// over all (gt + det) boxes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/data/datasets.h"
#include "trainer/data/internal/re_vcr.h"
#include "trainer/data/pretrain_datasets.h"
#include "trainer/internal/pretrain_batch.h"

namespace uniter::trainer::data {

struct VcrPretrainOptions {
  PretrainTask task = PretrainTask::kMlm;  // mlm, mrfr, mrc, mrc-kl (no ITM in VCR pretraining)
  std::string vcr_task = "qar";            // "qa" or "qar": which text (and id2len_<task>.json)
  int max_txt_len = 220;                   // train: the config's; val: −1 (every id)
  double mask_prob = 0.15;                 // --mrm_prob
  uint64_t seed = 42;
  int rank = 0, world = 1;                 // get_ids_and_lens: ids[rank::world]
};

// A pretraining example plus its text type ids (one per input id).
struct VcrPretrainExample {
  PretrainExample pretrain;  // example.images: one ImageFeat, the gt rows then the det rows
  std::vector<int64_t> txt_type_ids;
};

// Thread safe after NewEpoch (Get reads only).
class VcrPretrainDataset {
 public:
  // txt_db: a VCR txt_db (id2len_qa/qar.json, txt2img.json, meta.json with
  // MASK and v_range); img_spec: "gt_dir;det_dir" (either may be absent), the
  // gt db read with conf_th −1 / num_bb 100 as load_img_feat reads it.
  // UsageError on ITM or a vcr_task other than qa / qar.
  VcrPretrainDataset(const std::string& txt_db, const std::string& img_spec, const ImgDbOptions& img_options,
                     const VcrPretrainOptions& options);
  // The same over dbs already open (one txt_db per vcr_task, img_dbs shared
  // between the tasks as ImageLmdbGroup shares them).
  VcrPretrainDataset(std::shared_ptr<const VcrTxtDb> txt, VcrImgDbs img, const VcrPretrainOptions& options);

  // Only notes the epoch (the draws of example i depend on it).
  void NewEpoch(int64_t epoch) { epoch_ = epoch; }

  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  // Sampler lengths: id2len's text length + the gt db's nbb (num_bb 100 for
  // the gt db, as UNITER's defaultdict gives) + the det db's nbb.
  const std::vector<int64_t>& lens() const { return lens_; }
  const std::string& id(int64_t i) const;
  const VcrPretrainOptions& options() const { return options_; }

  VcrPretrainExample Get(int64_t i) const;

 private:
  void Init();

  std::shared_ptr<const VcrTxtDb> txt_;
  VcrImgDbs img_;
  VcrPretrainOptions options_;
  int64_t epoch_ = 0;
  int64_t mask_id_ = 0, v_begin_ = 0, v_end_ = 0;
  std::vector<size_t> rows_;  // indices into txt_->ids() of this rank
  std::vector<int64_t> lens_;
};

// mlm_collate_for_vcr / mrfr_collate_for_vcr / mrc_collate_for_vcr: the
// pretraining collate of the task plus batch.txt_type_ids [B, T] padded with 0.
// UsageError on an empty batch.
PretrainBatch CollateVcrPretrain(PretrainTask task, std::vector<VcrPretrainExample> examples);

}  // namespace uniter::trainer::data
