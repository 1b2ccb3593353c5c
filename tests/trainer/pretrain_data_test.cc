// The pretraining datasets and collates against a Python restatement of
// UNITER's (pretrain_data_ref.py over Python's own lmdb, msgpack, random,
// numpy and torch) on a generated txt_db + img_db: the sampler lengths, ITM's
// negatives, the masks and every collated tensor, bit for bit.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "common/error.h"
#include "featdb/npy.h"
#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/data/internal/pretrain_collate.h"
#include "trainer/data/pretrain_datasets.h"
#include "trainer/data/task_mixer.h"

namespace uniter::trainer::data {
namespace {

using ::uniter::testing::Quote;
using ::uniter::trainer::testing::TestDir;

class PretrainBatches : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::uniter::testing::TempDir("pretrain_data"));
    const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                          Quote(TestDir() + "/uniter_data_ref.py") + " gen " +
                                          Quote(*root_ + "/db") + " 5 12 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }

  void Check(const std::string& task_name, bool ot) {
    UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
    const std::vector<std::vector<int64_t>> batches = {{0, 1, 2, 3, 4, 5}, {6, 7, 8, 9, 10, 11, 12}, {40, 13, 77, 2}};
    const std::string txt = *root_ + "/db/vqa", img = *root_ + "/db/img";
    const nlohmann::json c = {{"task", task_name == "mrc-kl" ? "mrc" : task_name},
                              {"txt_db", txt}, {"img_db", img}, {"seed", 1234}, {"epoch", 3},
                              {"mask_prob", 0.3}, {"itm_neg_prob", 0.5}, {"max_txt_len", 60},
                              {"batches", batches}, {"ot", ot}};
    const std::string out = *root_ + "/ref_" + task_name;
    ::uniter::testing::WriteFile(out + ".case.json", c.dump());
    const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                          Quote(TestDir() + "/pretrain_data_ref.py") + " batches " +
                                          Quote(out + ".case.json") + " " + Quote(out) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto meta = nlohmann::json::parse(::uniter::testing::ReadFile(out + ".json"));
    std::map<std::string, featdb::Array> want;
    for (auto& a : featdb::ReadNpzFile(out + ".npz")) want[a.name] = std::move(a);

    ImgDbOptions io;
    DbPair db{std::make_shared<const TxtTokDb>(txt, 60), std::make_shared<const ImgFeatDb>(img, io)};
    PretrainDataOptions o;
    o.task = ParsePretrainTask(task_name);
    o.seed = 1234;
    o.mask_prob = 0.3;
    o.itm_neg_prob = 0.5;
    PretrainDataset ds(db, o);
    ds.NewEpoch(3);
    ASSERT_EQ(ds.size(), static_cast<int64_t>(meta["ids"].size()));
    EXPECT_EQ(ds.lens(), meta["lens"].get<std::vector<int64_t>>());
    for (int64_t i = 0; i < ds.size(); ++i) ASSERT_EQ(ds.ImageOf(i), meta["imgs"][i].get<std::string>()) << i;

    for (size_t k = 0; k < batches.size(); ++k) {
      std::vector<PretrainExample> examples;
      for (int64_t i : batches[k]) examples.push_back(ds.Get(i));
      const PretrainBatch p = CollatePretrain(o.task, std::move(examples), ot);
      const Batch& b = p.batch;
      const std::pair<const char*, const at::Tensor*> fields[] = {
          {"input_ids", &b.input_ids}, {"position_ids", &b.position_ids}, {"img_feat", &b.img_feat},
          {"img_pos_feat", &b.img_pos_feat}, {"attn_masks", &b.attn_masks}, {"gather_index", &b.gather_index},
          {"targets", &b.targets}, {"img_masks", &b.img_masks}, {"txt_labels", &p.txt_labels},
          {"img_mask_tgt", &p.img_mask_tgt}, {"feat_targets", &p.feat_targets},
          {"label_targets", &p.label_targets}, {"ot_scatter", &p.ot_scatter}, {"txt_pad", &p.txt_pad},
          {"img_pad", &p.img_pad}};
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
      if (p.ot_scatter.defined()) {
        EXPECT_EQ(p.scatter_max, p.ot_scatter.max().item<int64_t>());
      }
    }
  }

  static std::string* root_;
};
std::string* PretrainBatches::root_ = nullptr;

TEST_F(PretrainBatches, MlmEqualsUniters) { Check("mlm", false); }
TEST_F(PretrainBatches, MrfrEqualsUniters) { Check("mrfr", false); }
TEST_F(PretrainBatches, MrcKlEqualsUniters) { Check("mrc-kl", false); }
TEST_F(PretrainBatches, ItmWithOtInputsEqualsUniters) { Check("itm", true); }
TEST_F(PretrainBatches, ItmWithoutOtEqualsUniters) { Check("itm", false); }

// Masks are a function of (seed, epoch, example): the same example draws the
// same masks however often and in whatever order it is read, and a new epoch
// draws new ones.
TEST_F(PretrainBatches, DrawsDependOnSeedEpochAndExampleOnly) {
  ImgDbOptions io;
  DbPair db{std::make_shared<const TxtTokDb>(*root_ + "/db/vqa", 60),
            std::make_shared<const ImgFeatDb>(*root_ + "/db/img", io)};
  PretrainDataOptions o;
  o.task = PretrainTask::kMlm;
  PretrainDataset ds(db, o);
  ds.NewEpoch(1);
  const auto later = ds.Get(7).txt_labels;
  (void)ds.Get(3);
  EXPECT_EQ(ds.Get(7).txt_labels, later);
  int differ = 0;
  for (int64_t i = 0; i < 20; ++i) {
    ds.NewEpoch(1);
    const auto a = ds.Get(i).txt_labels;
    ds.NewEpoch(2);
    differ += a != ds.Get(i).txt_labels;
  }
  EXPECT_GE(differ, 10) << "epochs should redraw the masks";
}

// MetaLoader's choice: pretrain-indomain's pool (itm/mlm 2, mrfr/mrckl 1 per
// db) drawn once per accumulation group, as UNITER's code draws it.
TEST(TaskMixer, ChoosesWhatMetaLoaderChooses) {
  const std::vector<std::pair<std::string, int>> tasks = {
      {"itm_coco", 2}, {"mlm_coco", 2}, {"mrfr_coco", 1}, {"mrckl_coco", 1},
      {"itm_vg", 2}, {"mlm_vg", 2}, {"mrfr_vg", 1}, {"mrckl_vg", 1}};
  for (int accum : {1, 3}) {
    std::string args = " mix 42 " + std::to_string(accum) + " 500";
    for (const auto& [name, ratio] : tasks) args += " " + name + ":" + std::to_string(ratio);
    const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                          Quote(TestDir() + "/pretrain_data_ref.py") + args);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    TaskMixer mixer(tasks, accum);
    PyRandom rng(42);
    std::string ours;
    std::map<std::string, int> count;
    for (int i = 0; i < 500; ++i) {
      ours += mixer.Next(rng) + "\n";
      if (i % accum == 0) ++count[mixer.current()];
    }
    EXPECT_EQ(ours, r.out) << "accum " << accum;
    EXPECT_GT(count["itm_coco"], count["mrfr_coco"]) << "ratio 2 should be drawn about twice as often as 1";
  }
  EXPECT_THROW(TaskMixer({{"mlm", 0}}, 1), UsageError);
}

}  // namespace
}  // namespace uniter::trainer::data
