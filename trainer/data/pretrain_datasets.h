// UNITER's pretraining datasets (data/mlm.py MlmDataset, data/mrm.py
// MrfrDataset / MrcDataset, data/itm.py ItmDataset) over one (txt_db, img_db)
// pair: what each __getitem__ yields before collation.
//
// Randomness. UNITER masks inside DataLoader worker processes, so its draws
// depend on worker scheduling. Ours are reproducible whatever the loader's
// thread count: example i of epoch e draws from Python's generator seeded with
// ExampleSeed(seed, e, i); ITM's per-epoch labels and negative images
// (new_epoch) from ExampleSeed(seed, e, −1). The draws themselves are UNITER's
// (random_word, _get_img_mask, np.random.choice's threshold, sample_negative).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/datasets.h"
#include "trainer/pretrain_task.h"

namespace uniter::trainer::data {

// ((seed · 1000003 + epoch) · 1000003 + index + 1) mod 2⁶⁴ — the argument of
// random.seed for one example's draws.
uint64_t ExampleSeed(uint64_t seed, int64_t epoch, int64_t index);

struct PretrainDataOptions {
  PretrainTask task = PretrainTask::kMlm;
  double mask_prob = 0.15;     // MRFR / MRC region masking (pretrain.py --mask_prob)
  double itm_neg_prob = 0.5;   // ITM: share of negative pairs (--itm_neg_prob)
  uint64_t seed = 42;
  int rank = 0, world = 1;     // get_ids_and_lens: ids[rank::world]
};

struct PretrainExample {
  Example example;                  // id, [CLS] ids [SEP] (MLM: masked), one image (MRC: soft labels)
  std::vector<int64_t> txt_labels;  // MLM: [−1, labels…, −1]
  std::vector<bool> img_mask;       // MRFR / MRC: one per returned region
  int64_t itm_target = -1;          // ITM: 1 = the caption's image, 0 = a negative
};

// Thread safe after NewEpoch (Get reads only).
class PretrainDataset {
 public:
  PretrainDataset(DbPair db, const PretrainDataOptions& options);

  // Starts epoch `epoch` (≥ 1): ITM redraws its labels and negative images
  // and with them the lengths; the others only note the epoch.
  void NewEpoch(int64_t epoch);

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  // Sampler lengths: tl + nbb of the image the example reads this epoch.
  const std::vector<int64_t>& lens() const { return lens_; }
  const std::string& id(int64_t i) const { return ids_.at(i); }
  const PretrainDataOptions& options() const { return options_; }
  // The image example i reads this epoch.
  const std::string& ImageOf(int64_t i) const { return images_.at(i); }

  PretrainExample Get(int64_t i) const;

 private:
  DbPair db_;
  PretrainDataOptions options_;
  int64_t epoch_ = 0;
  std::vector<std::string> ids_;
  std::vector<int64_t> txt_lens_;
  std::vector<std::string> gt_images_;   // txt2img per id
  std::vector<std::string> all_images_;  // ITM's pool: the distinct gt images, sorted
  std::vector<std::string> images_;      // this epoch's (ITM: negatives swapped in)
  std::vector<int64_t> labels_;          // ITM
  std::vector<int64_t> lens_;
};

}  // namespace uniter::trainer::data
