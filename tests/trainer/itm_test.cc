// The ITM pieces against independent references (uniter_itm_ref.py, a
// restatement of UNITER's model/itm.py, the hard-negative forward and
// utils/itm_eval.py): head scores, hinge loss and gradients; the hard-negative
// loss with and without UNITER's gather-index quirk; recall@K with ties and
// images with several captions, both quirk modes; results.bin as Python's
// pickle.load reads it, and one Python wrote as our reader reads it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/config.h"
#include "trainer/internal/itm_run.h"
#include "trainer/internal/task_model.h"
#include "trainer/itm_eval.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;
using ::uniter::trainer::testing::LoadPlainDict;
using ::uniter::trainer::testing::TestDir;

std::string RunRef(const std::string& args) {
  const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                        Quote(TestDir() + "/uniter_itm_ref.py") + " " + args + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return r.out;
}

TaskModel ItmModelFrom(const std::map<std::string, at::Tensor>& io, const std::string& dir) {
  const UniterConfig config = UniterConfig::FromJsonFile(dir + "/model.json");
  TaskOptions o;
  o.task = TaskKind::kItm;
  at::manual_seed(0);
  TaskModel model = MakeTaskModel(config, o);
  at::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    auto it = io.find(p.key());
    EXPECT_NE(it, io.end()) << "reference lacks " << p.key();
    if (it != io.end()) p.value().copy_(it->second);
  }
  InitItmRankOutput(*model);  // as the reference: rank_output is itm_output row 1
  return model;
}

Batch BatchFrom(const std::map<std::string, at::Tensor>& io, const std::string& prefix) {
  Batch b;
  b.input_ids = io.at(prefix + "input_ids");
  b.position_ids = io.at(prefix + "position_ids");
  b.img_feat = io.at(prefix + "img_feat");
  b.img_pos_feat = io.at(prefix + "img_pos_feat");
  b.attn_masks = io.at(prefix + "attn_masks");
  b.gather_index = io.at(prefix + "gather_index");
  if (io.count(prefix + "sample_size")) b.sample_size = io.at(prefix + "sample_size").item<int64_t>();
  b.sample_size = b.sample_size ? b.sample_size : b.input_ids.size(0);
  return b;
}

double MaxDiff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(ItmHead, ScoresHingeLossAndGradientsEqualUniterRestatement) {
  const std::string dir = ::uniter::testing::TempDir("itm_head");
  RunRef("head " + Quote(dir));
  const auto io = LoadPlainDict(dir + "/io.pt");
  TaskModel model = ItmModelFrom(io, dir);
  model->eval();
  const Batch b = BatchFrom(io, "batch.");
  ASSERT_EQ(b.sample_size, 3);
  const at::Tensor scores = model->Scores(b);
  const at::Tensor loss = model->Loss(scores, b);
  const at::Tensor train = model->TrainLoss(loss, b);
  train.backward();
  ASSERT_EQ(scores.sizes(), io.at("out.scores").sizes());
  ASSERT_EQ(loss.sizes(), io.at("out.loss").sizes());
  EXPECT_LE(MaxDiff(scores.detach(), io.at("out.scores")), 1e-5);
  EXPECT_LE(MaxDiff(loss.detach(), io.at("out.loss")), 1e-5);
  EXPECT_LE(MaxDiff(train.detach().reshape({1}), io.at("out.train_loss")), 1e-5);
  for (const auto& p : model->named_parameters()) {
    auto it = io.find("grad." + p.key());
    if (it == io.end()) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key() << " has a gradient the reference lacks";
      continue;
    }
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_LE(MaxDiff(p.value().grad(), it->second), 1e-5 * it->second.abs().max().item<double>() + 1e-6) << p.key();
  }
}

TEST(ItmHead, InitOutputSharesItmOutputRowOne) {
  UniterConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 32;
  TaskOptions o;
  o.task = TaskKind::kItm;
  TaskModel model = MakeTaskModel(c, o);
  InitItmRankOutput(*model);
  std::map<std::string, at::Tensor> p;
  for (const auto& kv : model->named_parameters()) p[kv.key()] = kv.value();
  EXPECT_TRUE(at::equal(p["rank_output.weight"][0], p["itm_output.weight"][1]));
  at::NoGradGuard no_grad;
  p["rank_output.weight"].add_(1.0);  // an optimizer step on the ranking head...
  p["rank_output.bias"].add_(1.0);
  // ...moves itm_output row 1 too (UNITER's `.data = ...[1:]` view), not row 0.
  EXPECT_TRUE(at::equal(p["rank_output.weight"][0], p["itm_output.weight"][1]));
  EXPECT_TRUE(at::equal(p["rank_output.bias"], p["itm_output.bias"].slice(0, 1)));
  EXPECT_FALSE(at::equal(p["itm_output.weight"][0], p["itm_output.weight"][1]));
}

TEST(ItmHardNegatives, MinedLossEqualsUniterRestatementBothGatherModes) {
  const std::string dir = ::uniter::testing::TempDir("itm_hardneg");
  RunRef("hardneg " + Quote(dir));
  const auto io = LoadPlainDict(dir + "/io.pt");
  TaskModel model = ItmModelFrom(io, dir);
  model->train();  // dropout 0 in the reference's config: train mode is deterministic
  auto sorted = [](const at::Tensor& t) { return std::get<0>(t.detach().reshape({-1}).sort()); };
  const Batch bi = BatchFrom(io, "bi."), bt = BatchFrom(io, "bt.");
  const at::Tensor quirk = HardNegativeLoss(*model, bi, 'i', 3, false);
  const at::Tensor fixed = HardNegativeLoss(*model, bi, 'i', 3, true);
  const at::Tensor from_t = HardNegativeLoss(*model, bt, 't', 3, false);
  ASSERT_EQ(quirk.sizes(), io.at("out.loss_i_quirk").sizes());
  EXPECT_LE(MaxDiff(sorted(quirk), sorted(io.at("out.loss_i_quirk"))), 1e-5);
  EXPECT_LE(MaxDiff(sorted(fixed), sorted(io.at("out.loss_i_fixed"))), 1e-5);
  EXPECT_LE(MaxDiff(sorted(from_t), sorted(io.at("out.loss_t"))), 1e-5);
  // The quirk changes the result here (the last text is not the longest).
  EXPECT_GT(MaxDiff(sorted(io.at("out.loss_i_quirk")), sorted(io.at("out.loss_i_fixed"))), 1e-5);
}

struct EvalCase {
  std::vector<float> scores;
  std::vector<std::string> txt_ids, img_ids;
  std::map<std::string, std::string> txt2img;
  std::map<std::string, std::vector<std::string>> img2txts;
};

// `ni` images with 1–4 captions each (text order shuffled); scores drawn from
// `levels` values (few levels: many ties), the gt pair lifted by `signal`.
EvalCase MakeCase(int ni, int levels, float signal, uint32_t seed) {
  std::mt19937 gen(seed);
  EvalCase c;
  for (int j = 0; j < ni; ++j) {
    const std::string img = "img" + std::to_string(j);
    c.img_ids.push_back(img);
    for (int k = 0; k < 1 + static_cast<int>(gen() % 4); ++k) {
      const std::string t = "t" + std::to_string(j) + "_" + std::to_string(k);
      c.txt_ids.push_back(t);
      c.txt2img[t] = img;
      c.img2txts[img].push_back(t);
    }
  }
  std::shuffle(c.txt_ids.begin(), c.txt_ids.end(), gen);
  std::shuffle(c.img_ids.begin(), c.img_ids.end(), gen);
  for (const auto& t : c.txt_ids)
    for (const auto& i : c.img_ids)
      c.scores.push_back(static_cast<float>(gen() % levels) / levels + (c.txt2img[t] == i ? signal : 0.f));
  return c;
}

TEST(ItmEval, RecallEqualsUniterItmEvalRestatementWithTiesAndSeveralCaptions) {
  const std::string dir = ::uniter::testing::TempDir("itm_eval");
  int n = 0;
  for (const auto& [ni, levels, signal] : std::vector<std::tuple<int, int, float>>{
           {30, 4, 0.5f}, {30, 3, 0.0f}, {17, 1000, 0.3f}, {12, 2, 0.25f}, {40, 100000, 0.05f}}) {
    const EvalCase c = MakeCase(ni, levels, signal, 100 + n);
    const int nt = static_cast<int>(c.txt_ids.size());
    nlohmann::json rows = nlohmann::json::array();
    for (int i = 0; i < nt; ++i)
      rows.push_back(std::vector<float>(c.scores.begin() + i * ni, c.scores.begin() + (i + 1) * ni));
    const std::string path = dir + "/case" + std::to_string(n++) + ".json";
    ::uniter::testing::WriteFile(path, nlohmann::json{{"scores", rows}, {"txt_ids", c.txt_ids},
                                                      {"img_ids", c.img_ids}, {"txt2img", c.txt2img},
                                                      {"img2txts", c.img2txts}}
                                           .dump());
    const nlohmann::json ref = nlohmann::json::parse(RunRef("eval " + Quote(path)));
    for (const bool fix : {false, true}) {
      const ItmMetrics m = ItmEval(c.scores, c.txt_ids, c.img_ids, c.txt2img, c.img2txts, fix, path);
      const nlohmann::json& r = ref.at(fix ? "fixed" : "quirk");
      const std::map<std::string, double> ours = {
          {"txt_r1", m.txt_r1}, {"txt_r5", m.txt_r5}, {"txt_r10", m.txt_r10}, {"txt_r_mean", m.txt_r_mean},
          {"img_r1", m.img_r1}, {"img_r5", m.img_r5}, {"img_r10", m.img_r10}, {"img_r_mean", m.img_r_mean},
          {"r_mean", m.r_mean}};
      for (const auto& [k, v] : ours) EXPECT_NEAR(v, r.at(k).get<double>(), 1e-12) << path << " " << k << " fix=" << fix;
      // scores.json carries the same numbers under UNITER's keys.
      const nlohmann::json j = nlohmann::json::parse(ItmScoresJson(m));
      for (const auto& [k, v] : ours) EXPECT_EQ(j.at(k).get<double>(), v) << k;
    }
  }
}

TEST(ItmEval, QuirkCountsMatchedRowsBelowK) {
  // Text 0's gt image ranks first: the quirk counts it twice for R@1 (place 0
  // and row 0); text 1 misses R@1.
  const std::vector<float> s = {0.9f, 0.1f, 0.8f, 0.2f};  // rows t0, t1; columns a, b
  const std::map<std::string, std::string> t2i = {{"t0", "a"}, {"t1", "b"}};
  const std::map<std::string, std::vector<std::string>> i2t = {{"a", {"t0"}}, {"b", {"t1"}}};
  EXPECT_EQ(ItmEval(s, {"t0", "t1"}, {"a", "b"}, t2i, i2t, false, "x").img_r1, 1.0);
  EXPECT_EQ(ItmEval(s, {"t0", "t1"}, {"a", "b"}, t2i, i2t, true, "x").img_r1, 0.5);
}

TEST(ItmResults, PickleLoadsInPythonAsUnitersTuple) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string dir = ::uniter::testing::TempDir("itm_results");
  std::vector<float> raw = {0.5f, -1.25f, 3.0e-3f, 7.1f, 65504.f, -0.1f};
  std::vector<uint16_t> half;
  const std::vector<float> rounded = RoundToHalf(raw, &half);
  const std::string path = dir + "/results.bin";
  ::uniter::testing::WriteFile(path, ItmResultsPickle(half, {"t0", "t1"}, {"a.npz", "b.npz", "c.npz"}));
  const nlohmann::json r = nlohmann::json::parse(RunRef("results " + Quote(path)));
  EXPECT_EQ(r.at("type"), "Tensor");
  EXPECT_EQ(r.at("dtype"), "torch.float16");
  EXPECT_EQ(r.at("shape"), nlohmann::json({2, 3}));
  EXPECT_EQ(r.at("txt_ids"), nlohmann::json({"t0", "t1"}));
  EXPECT_EQ(r.at("img_ids"), nlohmann::json({"a.npz", "b.npz", "c.npz"}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(r.at("scores")[i][j].get<float>(), rounded[i * 3 + j]) << i << "," << j;
  EXPECT_NE(rounded[2], raw[2]);  // fp16 rounding happened
}

}  // namespace
}  // namespace uniter::trainer
