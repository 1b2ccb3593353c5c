// VCR second-stage pretraining data (pretrain_vcr.py's create_dataloaders)
// behind the pretraining run's task interface: each task reads every db of
// its dataset as VCR text over "gt_dir;det_dir" image features.
#include <tbb/parallel_for.h>

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "trainer/data/internal/re_vcr.h"
#include "trainer/data/py_random.h"
#include "trainer/data/vcr_pretrain_datasets.h"
#include "trainer/internal/pretrain_run.h"

namespace uniter::trainer {
namespace {

class VcrTaskData : public PretrainTaskData {
 public:
  explicit VcrTaskData(PretrainTask task) : PretrainTaskData(task) {}

  void Add(std::unique_ptr<data::VcrPretrainDataset> part) {
    offsets_.push_back(offsets_.empty() ? 0 : offsets_.back() + parts_.back()->size());
    parts_.push_back(std::move(part));
  }
  void NewEpoch(int64_t epoch) override {
    for (auto& p : parts_) p->NewEpoch(epoch);
  }
  std::vector<int64_t> Lens() const override {
    std::vector<int64_t> lens;
    for (const auto& p : parts_) lens.insert(lens.end(), p->lens().begin(), p->lens().end());
    return lens;
  }
  PretrainBatch Load(const std::vector<int64_t>& indices, tbb::task_arena& arena) const override {
    std::vector<data::VcrPretrainExample> examples(indices.size());
    // Each example draws from its own seeded generator: threads cannot change a batch.
    arena.execute([&] {
      tbb::parallel_for(size_t{0}, indices.size(), [&](size_t k) {
        const int64_t g = indices[k];
        size_t j = offsets_.size() - 1;
        while (offsets_[j] > g) --j;
        examples[k] = parts_[j]->Get(g - offsets_[j]);
      });
    });
    return data::CollateVcrPretrain(task(), std::move(examples));
  }

 private:
  std::vector<std::unique_ptr<data::VcrPretrainDataset>> parts_;
  std::vector<int64_t> offsets_;  // first global index of each part
};

}  // namespace

std::shared_ptr<const data::VcrTxtDb> PretrainDbs::OpenVcrTxt(const std::string& txt, bool train,
                                                              const std::string& vcr_task) {
  auto& t = vcr_txt_[(train ? "train:" : "val:") + vcr_task + ":" + txt];
  if (!t) t = std::make_shared<const data::VcrTxtDb>(txt, train ? o_.max_txt_len : -1, vcr_task);
  return t;
}

std::shared_ptr<const data::VcrImgDbs> PretrainDbs::OpenVcrImg(const std::string& img) {
  auto& m = vcr_img_[img];
  if (!m) m = std::make_shared<const data::VcrImgDbs>(data::OpenVcrImgDbs(img, data::ImgDbOptionsOf(o_)));
  return m;
}

std::unique_ptr<PretrainTaskData> MakeVcrTaskData(PretrainDbs& dbs, const PretrainDatasetSpec& spec,
                                                  PretrainTask task, bool train, const PretrainOptions& o) {
  if (task == PretrainTask::kItm) throw UsageError("VCR pretraining has no ITM task (mlm, mrfr, mrc, mrckl)");
  auto out = std::make_unique<VcrTaskData>(task);
  // UNITER's loop runs qa then qar into one dict key: qar's loader is the one kept.
  const std::vector<std::string> texts =
      o.fix_uniter_quirks ? std::vector<std::string>{"qa", "qar"} : std::vector<std::string>{"qar"};
  int64_t part = 0;
  for (const std::string& text : texts) {
    for (size_t j = 0; j < (train ? spec.db.size() : 1); ++j, ++part) {
      data::VcrPretrainOptions v;
      v.task = task;
      v.vcr_task = text;
      v.max_txt_len = train ? o.max_txt_len : -1;
      v.mask_prob = o.mrm_prob;
      v.seed = part == 0 ? o.seed : data::ExampleSeed(o.seed, part, -3);
      // Every rank reads all examples (ranks take turns in the batches).
      out->Add(std::make_unique<data::VcrPretrainDataset>(dbs.OpenVcrTxt(spec.db[j], train, text),
                                                          *dbs.OpenVcrImg(spec.img[j]), v));
    }
  }
  return out;
}

}  // namespace uniter::trainer
