// RE and VCR against independent references (re_vcr_ref.py): the heads'
// scores, losses and gradients vs a PyTorch restatement of model/re.py and
// model/vcr.py; RE's IoU/accuracy and VCR's accuracies vs restatements of
// UNITER's evaluation code on the same scores (ties and IoU edges included);
// train_vcr.py's checkpoint expansion.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <set>

#include "common/error.h"
#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/re_rank.h"
#include "trainer/internal/task_model.h"
#include "trainer/re_vcr_eval.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;
using ::uniter::trainer::testing::LoadPlainDict;
using ::uniter::trainer::testing::TestDir;

std::string Ref() { return Quote(TestDir() + "/re_vcr_ref.py"); }

void RunRef(const std::string& args) {
  const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " + Ref() + " " + args + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
}

void ExpectClose(const at::Tensor& ours, const at::Tensor& ref, double tol, const std::string& what) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const double diff = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs().max().item<double>();
  EXPECT_LE(diff, tol) << what << " max |diff| " << diff;
}

std::vector<int64_t> List(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

struct Case {
  const char* name;
  TaskKind task;
  int mlp;
};

class ReVcrHeadParity : public ::testing::TestWithParam<Case> {};

TEST_P(ReVcrHeadParity, ScoresLossesAndGradsEqualUniterRestatement) {
  const Case& c = GetParam();
  const std::string dir = ::uniter::testing::TempDir(std::string("revcr_head_") + c.name);
  RunRef(std::string("heads ") + Quote(dir) + (c.task == TaskKind::kRe ? " re " + std::to_string(c.mlp) : " vcr"));
  if (HasFatalFailure()) return;
  const auto io = LoadPlainDict(dir + "/io.pt");
  TaskOptions options;
  options.task = c.task;
  options.re_mlp = c.mlp;
  at::manual_seed(0);
  TaskModel model = MakeTaskModel(UniterConfig::FromJsonFile(dir + "/model.json"), options);
  {
    at::NoGradGuard no_grad;
    std::set<std::string> ours;
    for (auto& p : model->named_parameters()) {
      ours.insert(p.key());
      auto it = io.find(p.key());
      ASSERT_NE(it, io.end()) << "the reference lacks " << p.key();
      ASSERT_EQ(p.value().sizes(), it->second.sizes()) << p.key();
      p.value().copy_(it->second);
    }
    for (const auto& [key, v] : io) {
      if (key.rfind("batch.", 0) && key.rfind("out.", 0) && key.rfind("grad.", 0)) {
        EXPECT_TRUE(ours.count(key)) << "the model lacks UNITER's key " << key;
      }
    }
  }
  model->eval();
  Batch b;
  b.input_ids = io.at("batch.input_ids");
  b.position_ids = io.at("batch.position_ids");
  b.img_feat = io.at("batch.img_feat");
  b.img_pos_feat = io.at("batch.img_pos_feat");
  b.attn_masks = io.at("batch.attn_masks");
  b.gather_index = io.at("batch.gather_index");
  b.targets = io.at("batch.targets");
  if (io.count("batch.txt_type_ids")) b.txt_type_ids = io.at("batch.txt_type_ids");
  if (io.count("batch.obj_masks")) b.obj_masks = io.at("batch.obj_masks");
  b.txt_lens = List(io.at("batch.txt_lens"));
  b.num_bbs = List(io.at("batch.num_bbs"));
  const at::Tensor scores = model->Scores(b);
  const at::Tensor loss = model->Loss(scores, b);
  const at::Tensor train_loss = model->TrainLoss(loss, b);
  train_loss.backward();
  ExpectClose(scores.detach(), io.at("out.scores"), 1e-5, "scores");
  ExpectClose(loss.detach(), io.at("out.loss"), 1e-5, "loss");
  ExpectClose(train_loss.detach().reshape({1}), io.at("out.train_loss"), 1e-5, "train loss");
  for (const auto& p : model->named_parameters()) {
    auto it = io.find("grad." + p.key());
    if (it == io.end()) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key() << " has a gradient the reference lacks";
      continue;
    }
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    ExpectClose(p.value().grad(), it->second, 1e-5 * it->second.abs().max().item<double>() + 1e-6, "grad " + p.key());
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, ReVcrHeadParity,
                         ::testing::Values(Case{"re_mlp1", TaskKind::kRe, 1}, Case{"re_mlp2", TaskKind::kRe, 2},
                                           Case{"vcr", TaskKind::kVcr, 1}),
                         [](const auto& info) { return std::string(info.param.name); });

// train_loss rank: the negatives UNITER's sample_neg_ix draws from numpy's and
// Python's global generators after set_random_seed (several rounds, so both
// the hard and the random branch and the redraws occur), the loss and its
// gradients, and where both generators stand afterwards.
struct RankCase {
  const char* name;
  int mlp, seed;
  double hard_ratio, margin;
};

class ReRankParity : public ::testing::TestWithParam<RankCase> {};

TEST_P(ReRankParity, NegativesLossAndGradsEqualUniters) {
  const RankCase& c = GetParam();
  constexpr int kRounds = 8;
  const std::string dir = ::uniter::testing::TempDir(std::string("re_rank_") + c.name);
  RunRef("re_rank " + Quote(dir) + " " + std::to_string(c.mlp) + " " + std::to_string(c.seed) + " " +
         std::to_string(c.hard_ratio) + " " + std::to_string(c.margin) + " " + std::to_string(kRounds));
  if (HasFatalFailure()) return;
  const auto io = LoadPlainDict(dir + "/io.pt");
  TaskOptions options;
  options.task = TaskKind::kRe;
  options.re_mlp = c.mlp;
  TaskModel model = MakeTaskModel(UniterConfig::FromJsonFile(dir + "/model.json"), options);
  {
    at::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) p.value().copy_(io.at(p.key()));
  }
  model->eval();
  Batch b;
  b.input_ids = io.at("batch.input_ids");
  b.position_ids = io.at("batch.position_ids");
  b.img_feat = io.at("batch.img_feat");
  b.img_pos_feat = io.at("batch.img_pos_feat");
  b.attn_masks = io.at("batch.attn_masks");
  b.gather_index = io.at("batch.gather_index");
  b.targets = io.at("batch.targets");
  b.obj_masks = io.at("batch.obj_masks");
  b.txt_lens = List(io.at("batch.txt_lens"));
  b.num_bbs = List(io.at("batch.num_bbs"));
  const at::Tensor scores = model->Scores(b);
  ExpectClose(scores.detach(), io.at("out.scores"), 1e-5, "scores");
  data::PyRandom py(static_cast<uint64_t>(c.seed));
  data::NpRandom np(static_cast<uint64_t>(c.seed));
  const at::Tensor ref_neg = io.at("out.neg_ix"), ref_loss = io.at("out.rank_loss");
  int hard = 0;
  for (int r = 0; r < kRounds; ++r) {
    const std::vector<int64_t> neg = SampleReNegatives(scores, b, c.hard_ratio, np, py);
    EXPECT_EQ(neg, List(ref_neg[r])) << "round " << r;
    const at::Tensor loss = ReRankLoss(scores, b.targets, neg, c.margin);
    ExpectClose(loss.detach(), ref_loss[r], 1e-5, "rank loss round " + std::to_string(r));
    if (r == 0) model->TrainLoss(loss, b).backward({}, /*retain_graph=*/true);
    for (size_t i = 0; i < neg.size(); ++i) hard += neg[i] == List(at::argsort(scores[i].detach(), 0, true))[0];
  }
  EXPECT_GT(hard, 0) << "no round took a hard negative";
  auto state = [](const data::PyRandom::State& s) {
    std::vector<int64_t> v(s.mt.begin(), s.mt.end());
    v.push_back(s.index);
    return v;
  };
  EXPECT_EQ(state(py.GetState()), List(io.at("out.py_state"))) << "Python's generator after the draws";
  EXPECT_EQ(state(np.GetState()), List(io.at("out.np_state"))) << "numpy's generator after the draws";
  for (const auto& p : model->named_parameters()) {
    auto it = io.find("grad." + p.key());
    if (it == io.end()) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    ExpectClose(p.value().grad(), it->second, 1e-5 * it->second.abs().max().item<double>() + 1e-6, "grad " + p.key());
  }
}

INSTANTIATE_TEST_SUITE_P(Rank, ReRankParity,
                         ::testing::Values(RankCase{"seed24_mlp1", 1, 24, 0.5, 0.2},
                                           RankCase{"seed7_mlp2_small_margin", 2, 7, 0.3, 0.02}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ReRank, ImagesWithOneBoxAreRefused) {
  Batch b;
  b.targets = at::zeros({2}, at::kLong);
  b.num_bbs = {3, 1};
  data::PyRandom py(1);
  data::NpRandom np(1);
  EXPECT_THROW(SampleReNegatives(at::zeros({2, 3}), b, 0.0, np, py), UsageError);
}

// RE evaluation: random scores (with ties) and boxes near the target (IoU
// around 0.5, integer and fractional pixels), against computeIoU and argmax
// as UNITER runs them.
TEST(ReEval, IoUHitsAndAccuracyEqualUniterRestatement) {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  nlohmann::json items = nlohmann::json::array();
  struct Item {
    std::vector<float> scores, boxes;
    std::vector<double> bbox;
  };
  std::vector<Item> ours;
  for (int n = 0; n < 300; ++n) {
    const int nbb = 1 + gen() % 9;
    const int w = 200 + gen() % 400, h = 150 + gen() % 300;
    Item it;
    nlohmann::json pos = nlohmann::json::array();
    for (int k = 0; k < nbb; ++k) {
      const float x1 = unit(gen) * 0.6f, y1 = unit(gen) * 0.6f, bw = 0.05f + unit(gen) * 0.35f, bh = 0.05f + unit(gen) * 0.35f;
      const std::vector<float> p = {x1, y1, x1 + bw, y1 + bh, bw, bh, bw * bh};
      pos.push_back(p);
      it.boxes.insert(it.boxes.end(), {p[0] * w, p[1] * h, p[4] * w, p[5] * h});
      // Ties: scores from a small set.
      it.scores.push_back(static_cast<float>(gen() % 4) * 0.5f);
    }
    // The target: one box shifted a little (IoU near 0.5), in whole or fractional pixels.
    const float* b = &it.boxes[4 * (gen() % nbb)];
    const double shift = (gen() % 3) * b[2] * 0.17;
    it.bbox = {std::round(b[0] + shift), std::round(b[1]), std::round(b[2]), std::round(b[3])};
    if (n % 2) it.bbox = {b[0] + shift + 0.25, b[1] - 0.5, b[2] * 1.1, b[3]};
    items.push_back({{"scores", it.scores}, {"pos", pos}, {"width", w}, {"height", h}, {"bbox", it.bbox}});
    ours.push_back(std::move(it));
  }
  const std::string dir = ::uniter::testing::TempDir("re_eval");
  std::ofstream(dir + "/in.json") << items.dump();
  RunRef("re_eval " + Quote(dir + "/in.json") + " " + Quote(dir + "/out.json"));
  if (HasFatalFailure()) return;
  const auto ref = nlohmann::json::parse(::uniter::testing::ReadFile(dir + "/out.json"));
  int hits = 0, near_half = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const Item& it = ours[i];
    const int64_t ix = ArgMax(it.scores.data(), static_cast<int64_t>(it.scores.size()));
    ASSERT_EQ(ix, ref["items"][i]["ix"].get<int64_t>()) << "item " << i;
    const float* pred = &it.boxes[4 * ix];
    const double iou = ReIoU(pred, it.bbox.data());
    EXPECT_EQ(iou, ref["items"][i]["iou"].get<double>()) << "item " << i;
    EXPECT_EQ(ReHit(pred, it.bbox.data()), ref["items"][i]["hit"].get<bool>()) << "item " << i;
    hits += ReHit(pred, it.bbox.data());
    near_half += std::abs(iou - 0.5) < 0.1;
  }
  EXPECT_DOUBLE_EQ(static_cast<double>(hits) / ours.size(), ref["acc"].get<double>());
  EXPECT_GT(near_half, 10);  // the edge is exercised
  EXPECT_GT(hits, 10);
}

// VCR evaluation: val (8 scores) and test-layout (20) batches with tied scores.
TEST(VcrEval, AccuraciesAndLossesEqualUniterRestatement) {
  std::mt19937 gen(5);
  for (int width : {8, 20}) {
    SCOPED_TRACE(width);
    nlohmann::json scores = nlohmann::json::array(), qa = nlohmann::json::array(), qar = nlohmann::json::array();
    VcrMetrics m;
    for (int n = 0; n < 200; ++n) {
      std::vector<float> s(width);
      for (auto& v : s) v = static_cast<float>(static_cast<int>(gen() % 5) - 2) * 0.75f;  // many ties
      const int64_t a = gen() % 4, r = gen() % 4;
      m.Add(s, a, r);
      scores.push_back(s);
      qa.push_back(a);
      qar.push_back(r);
    }
    const std::string dir = ::uniter::testing::TempDir("vcr_eval");
    std::ofstream(dir + "/in.json") << nlohmann::json{{"scores", scores}, {"qa_targets", qa}, {"qar_targets", qar}}.dump();
    RunRef("vcr_eval " + Quote(dir + "/in.json") + " " + Quote(dir + "/out.json"));
    if (HasFatalFailure()) return;
    const auto ref = nlohmann::json::parse(::uniter::testing::ReadFile(dir + "/out.json"));
    EXPECT_EQ(m.n, 200);
    EXPECT_EQ(m.qa_correct, ref["qa"].get<int64_t>());
    EXPECT_EQ(m.qar_correct, ref["qar"].get<int64_t>());
    EXPECT_EQ(m.correct, ref["both"].get<int64_t>());
    EXPECT_NEAR(m.qa_loss, ref["qa_loss"].get<double>(), 1e-4);
    EXPECT_NEAR(m.qar_loss, ref["qar_loss"].get<double>(), 1e-4);
  }
}

// checkpoint_from pretrain: a 2-type, V-word checkpoint lands as [t0, t1, t0,
// t0] and V rows + the model's 81 new rows; vcr_pretrain refuses that shape.
TEST(VcrCheckpoint, PretrainExpandsAndVcrPretrainNeedsExpandedShapes) {
  UniterConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 32;
  TaskOptions vqa;
  vqa.task = TaskKind::kVqa;
  vqa.num_answers = 3;
  Model base(c, vqa, 1);
  const std::string dir = ::uniter::testing::TempDir("vcr_ckpt");
  base.Save(dir + "/pretrained.pt");
  auto& src = *base.module().uniter->embeddings;
  TaskOptions o;
  o.task = TaskKind::kVcr;
  Model m(c, o, 2);
  const at::Tensor drawn = m.module().uniter->embeddings->word_embeddings->weight.detach().clone();
  m.Load(dir + "/pretrained.pt");
  auto& emb = *m.module().uniter->embeddings;
  const at::Tensor t = emb.token_type_embeddings->weight, s = src.token_type_embeddings->weight;
  ASSERT_EQ(t.size(0), 4);
  EXPECT_TRUE(at::equal(t[0], s[0]) && at::equal(t[1], s[1]) && at::equal(t[2], s[0]) && at::equal(t[3], s[0]));
  const at::Tensor w = emb.word_embeddings->weight;
  ASSERT_EQ(w.size(0), 50 + 81);
  EXPECT_TRUE(at::equal(w.slice(0, 0, 50), src.word_embeddings->weight));
  EXPECT_TRUE(at::equal(w.slice(0, 50), drawn.slice(0, 50)));
  EXPECT_FALSE(emb.word_embeddings->options.padding_idx().has_value());
  o.checkpoint_from = "vcr_pretrain";
  Model strict(c, o, 2);
  EXPECT_THROW(strict.Load(dir + "/pretrained.pt"), FormatError);
  m.Save(dir + "/vcr.pt");  // an expanded checkpoint loads as it is
  strict.Load(dir + "/vcr.pt");
  EXPECT_TRUE(at::equal(strict.module().uniter->embeddings->word_embeddings->weight, w));
}

}  // namespace
}  // namespace uniter::trainer
