// trainer/optim against a restatement of UNITER's AdamW, parameter groups and
// schedule over torch 1.13 (tests/trainer/uniter_optim_ref.py), with torch's
// own clip_grad_norm_; plus resume from the saved state.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <map>

#include "common/error.h"
#include "featdb/npy.h"
#include "tests/test_util.h"
#include "trainer/optim/internal/adamw.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/param_groups.h"

namespace uniter::trainer::optim {
namespace {

using ::uniter::testing::Quote;

at::Tensor ToTensor(const featdb::Array& a) {
  const auto dtype = a.dtype == featdb::DType::kInt64 ? at::kLong : (a.dtype == featdb::DType::kFloat64 ? at::kDouble : at::kFloat);
  at::Tensor t = at::empty(a.shape, dtype);
  std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  return t;
}

// Largest |a − b| / max(|b|, 1e-30) over the elements.
double MaxRel(const at::Tensor& a, const at::Tensor& b) {
  return ((a.to(at::kDouble) - b.to(at::kDouble)).abs() / b.to(at::kDouble).abs().clamp_min(1e-30)).max().item<double>();
}

struct OptimCase {
  std::vector<std::string> head_keys;
  double lr_mul = 1.0;
  double grad_norm = 2.0;
};

const std::vector<std::string> kNames = {
    "uniter.embeddings.word_embeddings.weight", "uniter.embeddings.LayerNorm.weight",
    "uniter.embeddings.LayerNorm.bias", "uniter.img_embeddings.img_layer_norm.weight",
    "uniter.img_embeddings.mask_embedding.weight", "uniter.encoder.layer.0.attention.self.query.weight",
    "uniter.encoder.layer.0.attention.self.query.bias", "vqa_output.0.weight", "vqa_output.2.weight",
    "vqa_output.3.bias", "nlvr2_output.weight"};
const std::vector<std::vector<int64_t>> kShapes = {{11, 6}, {6}, {6}, {6}, {2, 5}, {6, 6}, {6}, {12, 6}, {12}, {4}, {2, 12}};
constexpr int kSteps = 7;

class UniterAdamW : public ::testing::Test {
 protected:
  void Run(const OptimCase& c) {
    UNITER_REQUIRE_PYTHON_MODULE("torch");
    const std::string dir = ::uniter::testing::TempDir("optim");
    // mask_embedding never gets a grad (UNITER's finetuning); nlvr2_output misses steps 2-3.
    const nlohmann::json j = {{"names", kNames}, {"shapes", kShapes}, {"steps", kSteps}, {"seed", 11},
                              {"lr", 8e-5}, {"warmup", 2}, {"total", 5}, {"betas", {0.9, 0.98}}, {"wd", 0.01},
                              {"grad_norm", c.grad_norm}, {"head_keys", c.head_keys}, {"lr_mul", c.lr_mul},
                              {"none_steps", {{kNames[4], {0, 1, 2, 3, 4, 5, 6}}, {kNames[10], {2, 3}}}},
                              {"grad_scale", {0.1, 5.0, 0.3, 10.0, 0.01, 1.0, 3.0}}};
    ::uniter::testing::WriteFile(dir + "/case.json", j.dump());
    const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                          Quote(std::string(UNITER_TRAINER_TEST_DIR) + "/uniter_optim_ref.py") + " " +
                                          Quote(dir + "/case.json") + " " + Quote(dir + "/out.npz"));
    ASSERT_EQ(r.exit_code, 0);
    const auto groups_ref = nlohmann::json::parse(r.out);
    for (auto& a : featdb::ReadNpzFile(dir + "/out.npz")) ref_[a.name] = ToTensor(a);

    // Groups: the same members in the same order.
    ParamGroupOptions go;
    go.weight_decay = 0.01;
    go.head_keys = c.head_keys;
    go.lr_mul = c.lr_mul;
    const auto groups = BuildParamGroups(kNames, go);
    ASSERT_EQ(groups.size(), groups_ref.size());
    for (size_t g = 0; g < groups.size(); ++g) {
      std::vector<std::string> names;
      for (size_t i : groups[g].members) names.push_back(kNames[i]);
      EXPECT_EQ(names, groups_ref[g].get<std::vector<std::string>>()) << "group " << g;
    }

    AdamWOptions ao;
    ao.lr = 8e-5;
    ao.beta1 = 0.9;
    ao.beta2 = 0.98;
    // An uninterrupted run, and one that saves its state after step 3 and resumes in a fresh optimizer.
    auto full = MakeParams();
    auto opt = std::make_unique<AdamW>(AdamW::FromNamedParameters(full, go, ao));
    auto resumed = MakeParams();
    auto opt2 = std::make_unique<AdamW>(AdamW::FromNamedParameters(resumed, go, ao));
    double worst = 0;
    for (int step = 0; step < kSteps; ++step) {
      if (step == 3) {
        const auto saved = opt2->StateTensors();
        std::vector<std::pair<std::string, at::Tensor>> copy;
        for (const auto& [n, t] : saved) copy.emplace_back(n, t.clone());
        opt2 = std::make_unique<AdamW>(AdamW::FromNamedParameters(resumed, go, ao));
        opt2->LoadStateTensors(copy);
      }
      const double lr = LrSched(step + 1, 8e-5, 2, 5);
      EXPECT_DOUBLE_EQ(lr, ref_.at("lrs")[step].item<double>());
      for (auto* o : {opt.get(), opt2.get()}) o->SetLr(lr);
      for (auto* params : {&full, &resumed}) {
        for (auto& [n, p] : *params) {
          auto it = ref_.find("grad/" + std::to_string(step) + "/" + n);
          p.mutable_grad() = it == ref_.end() ? at::Tensor() : it->second.clone();
        }
      }
      // The resumed run clips inside the update (ApplyUpdate's form): the bits must not move.
      GradClip clip;
      if (c.grad_norm != -1) {
        const double norm = ClipGradNorm(opt->AllParams(), c.grad_norm);
        EXPECT_NEAR(norm, ref_.at("norms")[step].item<double>(), 1e-6 * norm) << "step " << step;
        clip = ComputeGradClip(opt2->AllParams(), c.grad_norm);
        EXPECT_EQ(clip.norm, norm) << "step " << step;
      }
      opt->Step();
      opt2->Step(clip.coef);
      for (size_t i = 0; i < kNames.size(); ++i) {
        const at::Tensor& want = ref_.at("after/" + std::to_string(step) + "/" + kNames[i]);
        const double rel = MaxRel(full[i].second, want);
        worst = std::max(worst, rel);
        EXPECT_LE(rel, 1e-6) << kNames[i] << " step " << step;
        EXPECT_TRUE(at::equal(full[i].second, resumed[i].second)) << "resume differs: " << kNames[i] << " step " << step;
      }
    }
    // The never-stepped parameter kept its value and has no state, as in UNITER.
    EXPECT_TRUE(at::equal(full[4].second, ref_.at("init/" + kNames[4])));
    const auto state_list = opt->StateTensors();
    std::map<std::string, at::Tensor> state(state_list.begin(), state_list.end());
    EXPECT_EQ(state.count(kNames[4] + ".exp_avg"), 0u);
    EXPECT_EQ(state.size(), 3 * (kNames.size() - 1));
    for (const auto& [n, t] : state) {
      const std::string key = "state/" + n.substr(0, n.rfind('.')) + "/" + n.substr(n.rfind('.') + 1);
      ASSERT_TRUE(ref_.count(key)) << key;
      if (t.scalar_type() == at::kLong) {
        EXPECT_EQ(t.item<int64_t>(), ref_.at(key).item<int64_t>()) << key;
      } else {
        EXPECT_LE(MaxRel(t, ref_.at(key)), 1e-6) << key;
      }
    }
    RecordProperty("max_relative_difference", std::to_string(worst));
    std::cout << "max relative difference to the Python AdamW: " << worst << "\n";
  }

  std::vector<std::pair<std::string, at::Tensor>> MakeParams() {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& n : kNames) out.emplace_back(n, ref_.at("init/" + n).clone().set_requires_grad(true));
    return out;
  }

  std::map<std::string, at::Tensor> ref_;
};

TEST_F(UniterAdamW, VqaGroupsWithLrMulAndClipping) { Run({{"vqa_output"}, 10.0, 2.0}); }
TEST_F(UniterAdamW, TwoGroupsNoClipping) { Run({{}, 1.0, -1}); }

TEST(LrSched, WarmupLinearAsUniter) {
  EXPECT_DOUBLE_EQ(LrSched(0, 3e-5, 800, 8000), 1e-8);  // lr 0 → 1e-8
  EXPECT_DOUBLE_EQ(LrSched(400, 3e-5, 800, 8000), 3e-5 * (400.0 / 800.0));
  EXPECT_DOUBLE_EQ(LrSched(800, 3e-5, 800, 8000), 3e-5);
  EXPECT_DOUBLE_EQ(LrSched(4400, 3e-5, 800, 8000), 3e-5 * (3600.0 / 7200.0));
  EXPECT_DOUBLE_EQ(LrSched(9000, 3e-5, 800, 8000), 1e-8);
}

TEST(ParamGroups, NoDecayRule) {
  EXPECT_TRUE(IsNoDecay("uniter.encoder.layer.3.output.LayerNorm.weight"));
  EXPECT_TRUE(IsNoDecay("vqa_output.3.bias"));
  EXPECT_FALSE(IsNoDecay("uniter.img_embeddings.pos_layer_norm.weight"));
  EXPECT_FALSE(IsNoDecay("vqa_output.2.weight"));
}

TEST(AdamWState, BadStateIsOneClearError) {
  auto p = at::zeros({3}).set_requires_grad(true);
  AdamW opt = AdamW::FromNamedParameters({{"w", p}}, {}, {});
  EXPECT_THROW(opt.LoadStateTensors({{"nope.exp_avg", at::zeros({3})}}), FormatError);
  EXPECT_THROW(opt.LoadStateTensors({{"w.exp_avg", at::zeros({4})}, {"w.exp_avg_sq", at::zeros({3})},
                                     {"w.step", at::scalar_tensor(1, at::kLong)}}),
               FormatError);
  EXPECT_THROW(opt.LoadStateTensors({{"w.exp_avg", at::zeros({3})}}), FormatError);
}

}  // namespace
}  // namespace uniter::trainer::optim
