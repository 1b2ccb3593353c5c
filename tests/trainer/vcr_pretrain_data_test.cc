// VCR second-stage pretraining data against a Python restatement of UNITER's
// data/pretrain_vcr.py (pretrain_data_ref.py vcr_batches, over Python's own
// lmdb, msgpack, random and torch) on a generated VCR txt_db with gt and
// detected img_dbs: the ids kept, the sampler lengths, the masks, the type ids
// and every collated tensor, bit for bit, for QA and QAR text.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <map>
#include <string>

#include "common/error.h"
#include "featdb/npy.h"
#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/data/vcr_pretrain_datasets.h"

namespace uniter::trainer::data {
namespace {

using ::uniter::testing::Quote;
using ::uniter::trainer::testing::TestDir;

std::string Ref() { return Quote(::uniter::testing::Python()) + " " + Quote(TestDir() + "/pretrain_data_ref.py"); }

struct Case {
  const char* name;
  const char* task;
  const char* vcr_task;
  int rank, world;
};

class VcrPretrainBatches : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::uniter::testing::TempDir("vcr_pretrain_data"));
    const auto r = ::uniter::testing::Run(Ref() + " vcr_gen " + Quote(*root_) + " 5 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }
  static std::string* root_;
};
std::string* VcrPretrainBatches::root_ = nullptr;

TEST_P(VcrPretrainBatches, EqualUnitersDatasetsAndCollates) {
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  const Case c = GetParam();
  const std::string task = c.task;
  const std::vector<std::vector<int64_t>> batches = {{0, 1, 2, 3}, {9, 4, 12}, {5}};
  const nlohmann::json cfg = {{"task", task == "mrc-kl" ? "mrc" : task},
                              {"vcr_task", c.vcr_task}, {"txt_db", *root_ + "/vcr.db"},
                              {"gt_db", *root_ + "/vcr_gt"}, {"det_db", *root_ + "/vcr_det"},
                              {"seed", 77}, {"epoch", 2}, {"mask_prob", 0.3}, {"max_txt_len", 220},
                              {"rank", c.rank}, {"world", c.world}, {"batches", batches}};
  const std::string out = *root_ + "/ref_" + c.name;
  ::uniter::testing::WriteFile(out + ".case.json", cfg.dump());
  const auto r = ::uniter::testing::Run(Ref() + " vcr_batches " + Quote(out + ".case.json") + " " + Quote(out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto meta = nlohmann::json::parse(::uniter::testing::ReadFile(out + ".json"));
  std::map<std::string, featdb::Array> want;
  for (auto& a : featdb::ReadNpzFile(out + ".npz")) want[a.name] = std::move(a);

  VcrPretrainOptions o;
  o.task = ParsePretrainTask(task);
  o.vcr_task = c.vcr_task;
  o.seed = 77;
  o.mask_prob = 0.3;
  o.rank = c.rank;
  o.world = c.world;
  VcrPretrainDataset ds(*root_ + "/vcr.db", *root_ + "/vcr_gt;" + *root_ + "/vcr_det", ImgDbOptions{}, o);
  ds.NewEpoch(2);
  ASSERT_EQ(ds.size(), static_cast<int64_t>(meta["ids"].size()));
  for (int64_t i = 0; i < ds.size(); ++i) EXPECT_EQ(ds.id(i), meta["ids"][i].get<std::string>()) << i;
  EXPECT_EQ(ds.lens(), meta["lens"].get<std::vector<int64_t>>());

  for (size_t k = 0; k < batches.size(); ++k) {
    std::vector<VcrPretrainExample> examples;
    for (int64_t i : batches[k]) examples.push_back(ds.Get(i));
    const PretrainBatch p = CollateVcrPretrain(o.task, std::move(examples));
    const Batch& b = p.batch;
    const std::pair<const char*, const at::Tensor*> fields[] = {
        {"input_ids", &b.input_ids}, {"txt_type_ids", &b.txt_type_ids}, {"position_ids", &b.position_ids},
        {"img_feat", &b.img_feat}, {"img_pos_feat", &b.img_pos_feat}, {"attn_masks", &b.attn_masks},
        {"gather_index", &b.gather_index}, {"img_masks", &b.img_masks}, {"txt_labels", &p.txt_labels},
        {"img_mask_tgt", &p.img_mask_tgt}, {"feat_targets", &p.feat_targets}, {"label_targets", &p.label_targets}};
    for (const auto& [name, t] : fields) {
      const std::string key = "b" + std::to_string(k) + "_" + name;
      auto it = want.find(key);
      ASSERT_EQ(it != want.end(), t->defined()) << key;
      if (!t->defined()) continue;
      const featdb::Array& a = it->second;
      ASSERT_EQ(std::vector<int64_t>(t->sizes().begin(), t->sizes().end()), a.shape) << key;
      const at::Tensor ct = t->contiguous();
      ASSERT_EQ(static_cast<size_t>(ct.nbytes()), a.data.size()) << key << " " << featdb::DTypeName(a.dtype);
      EXPECT_EQ(0, std::memcmp(ct.data_ptr(), a.data.data(), a.data.size())) << key;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tasks, VcrPretrainBatches,
                         ::testing::Values(Case{"mlm_qar", "mlm", "qar", 0, 1}, Case{"mlm_qa", "mlm", "qa", 0, 1},
                                           Case{"mrfr_qar", "mrfr", "qar", 0, 1},
                                           Case{"mrckl_qa_rank1", "mrc-kl", "qa", 1, 2},
                                           Case{"mrc_qar_rank0", "mrc", "qar", 0, 2}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(VcrPretrainDataset, RefusesItmAndUnknownText) {
  const std::string root = ::uniter::testing::TempDir("vcr_pretrain_bad");
  VcrPretrainOptions o;
  o.task = PretrainTask::kItm;
  EXPECT_THROW(VcrPretrainDataset(root + "/none.db", root + "/gt", ImgDbOptions{}, o), UsageError);
  o.task = PretrainTask::kMlm;
  o.vcr_task = "qa,qar";
  EXPECT_THROW(VcrPretrainDataset(root + "/none.db", root + "/gt", ImgDbOptions{}, o), UsageError);
}

}  // namespace
}  // namespace uniter::trainer::data
