// UNITER's pretraining pieces against independent references: every task's
// losses and gradients against a PyTorch restatement of model/pretrain.py and
// model/ot.py (pretrain_ref.py), IPOT against a NumPy restatement of the
// algorithm, and the MLM / region masks against UNITER's own random_word and
// _get_img_mask run by Python's `random` — draw for draw — plus their
// statistics over 100k draws.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/config.h"
#include "trainer/data/masking.h"
#include "trainer/internal/ot.h"
#include "trainer/internal/pretrain_model.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;
using ::uniter::trainer::testing::LoadPlainDict;
using ::uniter::trainer::testing::TestDir;

std::map<std::string, at::Tensor> RunPretrainRef(const std::string& args, const std::string& dir) {
  const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                        Quote(TestDir() + "/pretrain_ref.py") + " " + args + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return LoadPlainDict(dir + "/io.pt");
}

at::Tensor Get(const std::map<std::string, at::Tensor>& io, const std::string& key) {
  auto it = io.find(key);
  return it == io.end() ? at::Tensor() : it->second;
}

void ExpectClose(const at::Tensor& ours, const at::Tensor& ref, double tol, const std::string& what) {
  ASSERT_TRUE(ours.defined() && ref.defined()) << what;
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const double diff = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs().max().item<double>();
  EXPECT_LE(diff, tol) << what << " max |diff| " << diff;
}

PretrainBatch ToPretrainBatch(const std::map<std::string, at::Tensor>& io) {
  PretrainBatch p;
  Batch& b = p.batch;
  b.input_ids = Get(io, "batch.input_ids");
  b.position_ids = Get(io, "batch.position_ids");
  b.img_feat = Get(io, "batch.img_feat");
  b.img_pos_feat = Get(io, "batch.img_pos_feat");
  b.attn_masks = Get(io, "batch.attn_masks");
  b.gather_index = Get(io, "batch.gather_index");
  b.img_masks = Get(io, "batch.img_masks");
  b.targets = Get(io, "batch.targets");
  b.txt_type_ids = Get(io, "batch.txt_type_ids");
  p.txt_labels = Get(io, "batch.txt_labels");
  p.img_mask_tgt = Get(io, "batch.img_mask_tgt");
  p.feat_targets = Get(io, "batch.feat_targets");
  p.label_targets = Get(io, "batch.label_targets");
  p.ot_scatter = Get(io, "batch.ot_scatter");
  if (p.ot_scatter.defined()) p.scatter_max = Get(io, "batch.scatter_max").item<int64_t>();
  p.txt_pad = Get(io, "batch.txt_pad");
  p.img_pad = Get(io, "batch.img_pad");
  return p;
}

class PretrainParity : public ::testing::TestWithParam<const char*> {};

TEST_P(PretrainParity, LossesAndGradientsEqualUniterRestatement) {
  const std::string task = GetParam();
  const std::string dir = ::uniter::testing::TempDir("pretrain_" + task);
  const auto io = RunPretrainRef("heads " + Quote(dir) + " " + task, dir);
  const UniterConfig config = UniterConfig::FromJsonFile(dir + "/model.json");
  at::manual_seed(0);
  PretrainModel model(config, /*img_dim=*/2048, /*img_label_dim=*/1601);
  // Every UNITER key, both names of the tied tensors included, and no other.
  std::set<std::string> ours;
  {
    at::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      ours.insert(p.key());
      const at::Tensor ref = Get(io, p.key());
      ASSERT_TRUE(ref.defined()) << "the reference lacks " << p.key();
      ASSERT_EQ(p.value().sizes(), ref.sizes()) << p.key();
      p.value().copy_(ref);
    }
  }
  for (const auto& [key, value] : io) {
    if (key.find('.') != std::string::npos && key.rfind("batch.", 0) != 0 && key.rfind("out.", 0) != 0 &&
        key.rfind("grad.", 0) != 0) {
      EXPECT_TRUE(ours.count(key)) << "the model lacks UNITER's key " << key;
    }
  }
  EXPECT_TRUE(ours.count("cls.predictions.decoder.weight"));
  EXPECT_TRUE(ours.count("feat_regress.weight"));
  EXPECT_TRUE(model->named_parameters()["cls.predictions.decoder.weight"].is_same(
      model->named_parameters()["uniter.embeddings.word_embeddings.weight"]));
  EXPECT_TRUE(model->named_parameters()["feat_regress.weight"].is_same(
      model->named_parameters()["uniter.img_embeddings.img_linear.weight"]));

  model->eval();
  const PretrainTask kind = ParsePretrainTask(task);
  const PretrainBatch batch = ToPretrainBatch(io);
  const PretrainOutput out = model->Loss(kind, batch);
  const at::Tensor train_loss = PretrainModelImpl::TrainLoss(kind, out, 0.1);
  train_loss.backward();
  ExpectClose(out.loss.detach(), io.at("out.loss"), 1e-5, "loss");
  ExpectClose(train_loss.detach().reshape({1}), io.at("out.train_loss"), 1e-5, "train loss");
  if (kind == PretrainTask::kItm) {
    ExpectClose(out.ot_pos.detach(), io.at("out.ot_pos"), 1e-5, "ot_pos");
    ExpectClose(out.ot_neg.detach(), io.at("out.ot_neg"), 1e-5, "ot_neg");
  }
  // torch's named_parameters lists a tied tensor once, under its first name;
  // its gradient there sums both uses.
  for (const auto& p : model->named_parameters()) {
    const at::Tensor ref = Get(io, "grad." + p.key());
    if (!ref.defined()) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    const double scale = ref.abs().max().item<double>();
    ExpectClose(p.value().grad(), ref, 1e-5 * scale + 1e-6, "grad " + p.key());
  }
  EXPECT_TRUE(io.count("grad.uniter.embeddings.word_embeddings.weight") || kind != PretrainTask::kMlm);
}

INSTANTIATE_TEST_SUITE_P(Tasks, PretrainParity, ::testing::Values("mlm", "mrfr", "mrc", "mrc-kl", "itm"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

// pretrain_vcr.py: the expansion draws what UNITER's draws (from the same
// seed: LibTorch's generator is torch's), the tie follows the new word table,
// and each VCR task's losses and gradients with type ids 2 / 3 and the
// special-token rows equal the restatement's.
class VcrPretrainParity : public ::testing::TestWithParam<const char*> {};

TEST_P(VcrPretrainParity, ExpansionLossesAndGradientsEqualUniterRestatement) {
  const std::string task = GetParam();
  const std::string dir = ::uniter::testing::TempDir("vcr_pretrain_" + task);
  const auto io = RunPretrainRef("vcr_heads " + Quote(dir) + " " + task, dir);
  const UniterConfig config = UniterConfig::FromJsonFile(dir + "/model.json");
  PretrainModel model(config, /*img_dim=*/2048, /*img_label_dim=*/1601);
  auto load = [&](const std::string& prefix) {
    at::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      const at::Tensor ref = Get(io, prefix + p.key());
      ASSERT_TRUE(ref.defined()) << "the reference lacks " << prefix << p.key();
      ASSERT_EQ(p.value().sizes(), ref.sizes()) << p.key();
      p.value().copy_(ref);
    }
  };
  load("pre.");
  at::manual_seed(99);
  model->ExpandForVcr(81);
  for (const auto& p : model->named_parameters()) {
    const at::Tensor ref = Get(io, "expanded." + p.key());
    ASSERT_TRUE(ref.defined()) << p.key();
    ASSERT_EQ(p.value().sizes(), ref.sizes()) << p.key();
    EXPECT_TRUE(at::equal(p.value(), ref)) << "expanded " << p.key();
  }
  EXPECT_EQ(model->named_parameters()["uniter.embeddings.token_type_embeddings.weight"].size(0), 4);
  EXPECT_TRUE(model->named_parameters()["cls.predictions.decoder.weight"].is_same(
      model->named_parameters()["uniter.embeddings.word_embeddings.weight"]));

  load("");
  model->eval();
  const PretrainTask kind = ParsePretrainTask(task);
  const PretrainBatch batch = ToPretrainBatch(io);
  ASSERT_TRUE(batch.batch.txt_type_ids.defined());
  const PretrainOutput out = model->Loss(kind, batch);
  const at::Tensor train_loss = PretrainModelImpl::TrainLoss(kind, out, 0.1);
  train_loss.backward();
  ExpectClose(out.loss.detach(), io.at("out.loss"), 1e-5, "loss");
  ExpectClose(train_loss.detach().reshape({1}), io.at("out.train_loss"), 1e-5, "train loss");
  for (const auto& p : model->named_parameters()) {
    const at::Tensor ref = Get(io, "grad." + p.key());
    if (!ref.defined()) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    const double scale = ref.abs().max().item<double>();
    ExpectClose(p.value().grad(), ref, 1e-5 * scale + 1e-6, "grad " + p.key());
  }
}

INSTANTIATE_TEST_SUITE_P(Tasks, VcrPretrainParity, ::testing::Values("mlm", "mrfr", "mrc-kl"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

TEST(Ipot, EqualsANumPyRestatement) {
  const std::string dir = ::uniter::testing::TempDir("ipot");
  const auto io = RunPretrainRef("ipot " + Quote(dir), dir);
  const at::Tensor T = Ipot(io.at("in.C"), io.at("in.x_len"), io.at("in.x_pad"), io.at("in.y_len"),
                            io.at("in.y_pad"), io.at("in.joint_pad"), 0.5, 50, 1);
  ExpectClose(T, io.at("out.T"), 1e-12, "transport plan (float64)");
  const at::Tensor dist = OptimalTransportDist(io.at("in.x"), io.at("in.y"), io.at("in.x_pad"), io.at("in.y_pad"));
  ExpectClose(dist, io.at("out.dist"), 1e-12, "distance (float64)");
  // A plan, not noise: padded rows carry nothing and the mass is spread.
  EXPECT_EQ(T.masked_select(io.at("in.joint_pad").transpose(1, 2)).abs().sum().item<double>(), 0.0);
  EXPECT_GT(T.sum().item<double>(), 0.0);
}

// UNITER's random_word and _get_img_mask, run by Python's random from the same
// seed, draw exactly what ours draw.
TEST(PretrainMasks, DrawWhatUnitersCodeDrawsFromTheSameSeed) {
  constexpr int kSentences = 3000;
  const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                        Quote(TestDir() + "/pretrain_ref.py") + " masks 2024 " +
                                        std::to_string(kSentences));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  data::PyRandom rng(2024);
  std::istringstream ref(r.out);
  std::string line;
  for (int i = 0; i < kSentences; ++i) {
    ASSERT_TRUE(std::getline(ref, line)) << i;
    std::vector<int64_t> tokens;
    for (int j = 0; j < 1 + i % 13; ++j) tokens.push_back(1000 + 7 * i + j);
    const data::MaskedTokens m = data::RandomWord(tokens, 999, 28996, 103, rng);
    const std::vector<bool> img = data::ImgMask(0.15, 1 + i % 40, rng);
    std::ostringstream ours;
    for (size_t j = 0; j < m.input_ids.size(); ++j) ours << (j ? " " : "") << m.input_ids[j];
    ours << " |";
    for (int64_t l : m.labels) ours << ' ' << l;
    ours << " | ";
    for (bool b : img) ours << (b ? '1' : '0');
    ASSERT_EQ(ours.str(), line) << "sentence " << i;
  }
}

// 100k draws: targets 15 %, of which 80 % [MASK], 10 % random, 10 % kept;
// regions masked at mask_prob. 100-token sentences make the "at least one"
// rule negligible (0.85^100). Bounds: 5 binomial standard deviations.
TEST(PretrainMasks, StatisticsMatchTheStatedProbabilities) {
  data::PyRandom rng(7);
  int64_t tokens = 0, targets = 0, masked = 0, replaced = 0, kept = 0;
  int64_t regions = 0, masked_regions = 0;
  std::vector<int64_t> sentence(100);
  for (int j = 0; j < 100; ++j) sentence[j] = 5000 + j;
  for (int i = 0; i < 1000; ++i) {
    const data::MaskedTokens m = data::RandomWord(sentence, 999, 28996, 103, rng);
    for (int j = 0; j < 100; ++j) {
      ++tokens;
      if (m.labels[j] == -1) {
        EXPECT_EQ(m.input_ids[j], sentence[j]);
        continue;
      }
      EXPECT_EQ(m.labels[j], sentence[j]);
      ++targets;
      if (m.input_ids[j] == 103) ++masked;
      else if (m.input_ids[j] == sentence[j]) ++kept;
      else ++replaced;
      EXPECT_TRUE(m.input_ids[j] == 103 || (m.input_ids[j] >= 999 && m.input_ids[j] < 28996)) << m.input_ids[j];
    }
    for (int k = 0; k < 3; ++k) {
      const std::vector<bool> img = data::ImgMask(0.3, 36, rng);
      regions += 36;
      masked_regions += std::count(img.begin(), img.end(), true);
    }
  }
  auto within = [](double k, double n, double p) { return std::abs(k - n * p) <= 5 * std::sqrt(n * p * (1 - p)); };
  EXPECT_TRUE(within(targets, tokens, 0.15)) << targets << " / " << tokens;
  EXPECT_TRUE(within(masked, targets, 0.8)) << masked << " / " << targets;
  EXPECT_TRUE(within(replaced, targets, 0.1)) << replaced << " / " << targets;
  EXPECT_TRUE(within(kept, targets, 0.1)) << kept << " / " << targets;
  EXPECT_TRUE(within(masked_regions, regions, 0.3)) << masked_regions << " / " << regions;
}

}  // namespace
}  // namespace uniter::trainer
