#include "trainer/data/pretrain_datasets.h"

#include <algorithm>
#include <set>

#include "common/error.h"
#include "trainer/data/masking.h"
#include "trainer/data/py_random.h"
#include "trainer/data/token_bucket_sampler.h"

namespace uniter::trainer::data {

uint64_t ExampleSeed(uint64_t seed, int64_t epoch, int64_t index) {
  constexpr uint64_t kPrime = 1000003;  // unsigned arithmetic: mod 2^64, as the doc states
  return (seed * kPrime + static_cast<uint64_t>(epoch)) * kPrime + static_cast<uint64_t>(index + 1);
}

PretrainDataset::PretrainDataset(DbPair db, const PretrainDataOptions& options)
    : db_(std::move(db)), options_(options) {
  if (options.mask_prob < 0 || options.mask_prob > 1) throw UsageError("mask_prob must be in [0, 1]");
  if (options.itm_neg_prob < 0 || options.itm_neg_prob > 1) throw UsageError("itm_neg_prob must be in [0, 1]");
  const TxtTokDb& txt = *db_.txt;
  const auto txt2img = txt.Txt2Img();
  for (int64_t j : ShardIndices(static_cast<int64_t>(txt.ids().size()), options.rank, options.world)) {
    const std::string& id = txt.ids()[j];
    auto it = txt2img.find(id);
    if (it == txt2img.end()) throw FormatError("example '" + id + "' is not in txt2img.json", txt.dir());
    if (it->second.size() != 1)
      throw FormatError("example '" + id + "' has " + std::to_string(it->second.size()) +
                            " images in txt2img.json; pretraining captions need one",
                        txt.dir());
    ids_.push_back(id);
    txt_lens_.push_back(txt.txt_lens()[j]);
    gt_images_.push_back(it->second[0]);
  }
  // ItmDataset's all_imgs: the distinct images of this rank's captions (a
  // Python set there, whose order varies run to run; sorted here).
  const std::set<std::string> pool(gt_images_.begin(), gt_images_.end());
  all_images_.assign(pool.begin(), pool.end());
  images_ = gt_images_;
  labels_.assign(ids_.size(), 1);
  lens_.resize(ids_.size());
  for (size_t i = 0; i < ids_.size(); ++i) lens_[i] = txt_lens_[i] + db_.img->Nbb(images_[i]);
}

void PretrainDataset::NewEpoch(int64_t epoch) {
  epoch_ = epoch;
  if (options_.task != PretrainTask::kItm) return;
  // new_epoch: every label first (np.random.choice([0, 1], p=[neg, 1 − neg]):
  // 0 when the uniform draw is below neg), then each negative's image
  // (sample_negative: redraw until it differs from the caption's).
  PyRandom rng(ExampleSeed(options_.seed, epoch, -1));
  for (int64_t& label : labels_) label = rng.Random() < options_.itm_neg_prob ? 0 : 1;
  for (size_t i = 0; i < ids_.size(); ++i) {
    images_[i] = gt_images_[i];
    if (labels_[i] == 0) {
      if (all_images_.size() < 2)
        throw FormatError("ITM negatives need at least two images", db_.txt->dir());
      std::string neg = gt_images_[i];
      while (neg == gt_images_[i]) neg = all_images_[rng.RandBelow(all_images_.size())];
      images_[i] = neg;
    }
    lens_[i] = txt_lens_[i] + db_.img->Nbb(images_[i]);
  }
}

PretrainExample PretrainDataset::Get(int64_t i) const {
  const TxtTokDb& txt = *db_.txt;
  PretrainExample out;
  Example& ex = out.example;
  ex.id = ids_.at(i);
  TextExample t = txt.Get(ex.id);
  PyRandom rng(ExampleSeed(options_.seed, epoch_, i));
  std::vector<int64_t> body = std::move(t.input_ids);
  if (options_.task == PretrainTask::kMlm) {
    if (txt.v_range().size() != 2) throw FormatError("meta.json needs v_range [begin, end] for MLM", txt.dir());
    MaskedTokens m = RandomWord(std::move(body), txt.v_range()[0], txt.v_range()[1], txt.mask(), rng);
    body = std::move(m.input_ids);
    out.txt_labels.reserve(body.size() + 2);
    out.txt_labels.push_back(-1);
    out.txt_labels.insert(out.txt_labels.end(), m.labels.begin(), m.labels.end());
    out.txt_labels.push_back(-1);
  }
  ex.input_ids.reserve(body.size() + 2);
  ex.input_ids.push_back(txt.cls());
  ex.input_ids.insert(ex.input_ids.end(), body.begin(), body.end());
  ex.input_ids.push_back(txt.sep());
  const bool mrc = options_.task == PretrainTask::kMrc || options_.task == PretrainTask::kMrcKl;
  ex.images.push_back(db_.img->Get(images_.at(i), mrc));
  if (options_.task == PretrainTask::kMrfr || mrc) out.img_mask = ImgMask(options_.mask_prob, ex.images[0].nbb, rng);
  if (options_.task == PretrainTask::kItm) out.itm_target = labels_.at(i);
  return out;
}

}  // namespace uniter::trainer::data
