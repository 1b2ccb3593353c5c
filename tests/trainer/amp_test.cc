// Mixed precision against independent references: the dynamic loss scaler
// against PyTorch's own torch.amp.GradScaler (PyPI torch of the venv-cuda,
// run on the CPU) on a gradient sequence with injected overflow, and the bf16
// CPU autocast forward/backward of the heads against the PyTorch restatement
// of UNITER (uniter_ref.py) under torch.autocast("cpu", torch.bfloat16) of
// PyPI torch 2.11 (see Bf16Parity for why not 1.13). Plus the
// device / precision options and the fp16 checkpoint dtype.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "common/error.h"
#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/config.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/task_model.h"
#include "trainer/model.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;
using ::uniter::trainer::testing::LoadPlainDict;
using ::uniter::trainer::testing::TestDir;

std::string CudaVenvPython() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/uniter/venv-cuda/bin/python";
}

// The same gradients through our scaler and torch.amp.GradScaler: the same
// unscaled gradients (bit for bit: powers of two), the same skipped steps,
// the same scale after every update, the same final parameter.
TEST(LossScaler, MatchesTorchGradScalerWithInjectedOverflow) {
  const std::string python = CudaVenvPython();
  UNITER_SKIP_UNLESS_REFERENCE(
      ::uniter::testing::Run(Quote(python) + " -c 'import torch; torch.amp.GradScaler(\"cpu\")' 2>/dev/null")
              .exit_code == 0,
      python + " lacks torch >= 2.3 (torch.amp.GradScaler on the CPU; scripts/install-deps.sh makes that venv)");
  const std::string dir = ::uniter::testing::TempDir("grad_scaler");
  const auto r = ::uniter::testing::Run(Quote(python) + " " + Quote(TestDir() + "/amp_ref.py") + " scaler " +
                                        Quote(dir + "/ref.pt") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ref = LoadPlainDict(dir + "/ref.pt");
  LossScalerOptions o;
  o.init_scale = ref.at("init_scale").item<double>();
  o.growth_factor = ref.at("growth_factor").item<double>();
  o.backoff_factor = ref.at("backoff_factor").item<double>();
  o.growth_interval = ref.at("growth_interval").item<int64_t>();
  LossScaler scaler(true, o);
  const at::Tensor grads = ref.at("grads");
  at::Tensor p = ref.at("p0").clone().set_requires_grad(true);
  int skipped = 0;
  for (int64_t i = 0; i < grads.size(0); ++i) {
    scaler.Scale((p * grads[i]).sum()).backward();
    const bool overflow = scaler.UnscaleAndCheck({p});
    const at::Tensor want = ref.at("unscaled")[i];
    // NaN == NaN here: the overflowing rows must match too.
    EXPECT_TRUE(at::equal(p.grad().isnan(), want.isnan()) &&
                at::equal(p.grad().nan_to_num(0, 1, -1), want.nan_to_num(0, 1, -1)))
        << "step " << i << ": unscaled grad " << p.grad() << " vs torch's " << want;
    EXPECT_EQ(overflow, ref.at("skipped")[i].item<int64_t>() == 1) << "step " << i;
    skipped += overflow;
    if (!overflow) {
      at::NoGradGuard no_grad;
      p.sub_(p.grad());  // SGD, lr 1, as the reference
    }
    p.mutable_grad().zero_();
    scaler.Update(overflow);
    EXPECT_EQ(scaler.scale(), ref.at("scale_after")[i].item<float>()) << "step " << i;
  }
  EXPECT_EQ(skipped, 4);  // the sequence injects four overflows
  EXPECT_TRUE(at::equal(p.detach(), ref.at("p"))) << p << " vs " << ref.at("p");
}

TEST(LossScaler, StateRoundTripsAndRefusesBadValues) {
  LossScalerOptions o;
  o.growth_interval = 3;
  LossScaler a(true, o);
  a.Update(true);
  a.Update(false);
  LossScaler b(true, o);
  const auto state = a.StateTensors();
  ASSERT_EQ(state.size(), 2u);
  b.LoadState(state[0].second, state[1].second, "state.pt");
  EXPECT_EQ(b.scale(), 32768.0f);
  EXPECT_EQ(b.growth_tracker(), 1);
  EXPECT_THROW(b.LoadState(at::scalar_tensor(-1.0f), state[1].second, "state.pt"), FormatError);
  EXPECT_THROW(b.LoadState(state[0].second, at::scalar_tensor(int64_t{3}), "state.pt"), FormatError);
  EXPECT_THROW(b.LoadState({}, state[1].second, "state.pt"), FormatError);
}

TEST(Device, OptionsResolve) {
  EXPECT_TRUE(ResolveDevice("cpu").is_cpu());
  EXPECT_THROW(ResolveDevice("gpu"), UsageError);
  EXPECT_THROW(ResolveDevice("cuda:x"), UsageError);
  if (!torch::cuda::is_available()) {
    EXPECT_TRUE(ResolveDevice("auto").is_cpu());
    try {
      ResolveDevice("cuda:0");
      ADD_FAILURE() << "cuda:0 resolved without a GPU";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--device cuda:0"), std::string::npos) << e.what();
    }
  }
  const c10::Device cpu(c10::kCPU);
  const Precision fp16_cpu = ResolvePrecision(true, "", cpu);
  EXPECT_EQ(fp16_cpu.mode, AmpMode::kFp32);
  EXPECT_NE(fp16_cpu.notice.find("fp32"), std::string::npos);
  EXPECT_EQ(ResolvePrecision(true, "bf16", cpu).mode, AmpMode::kBf16);
  EXPECT_EQ(ResolvePrecision(true, "fp32", cpu).mode, AmpMode::kFp32);
  EXPECT_TRUE(ResolvePrecision(false, "", cpu).notice.empty());
  EXPECT_EQ(ResolvePrecision(true, "", c10::Device(c10::kCUDA, 0)).mode, AmpMode::kFp16);
  EXPECT_THROW(ResolvePrecision(false, "fp8", cpu), UsageError);
}

// Inside the guard LibTorch's linear runs in bf16; after it, fp32 again.
TEST(AutocastGuard, ScopesCpuBf16) {
  const at::Tensor x = at::randn({2, 3}), w = at::randn({4, 3});
  {
    AutocastGuard g(AmpMode::kBf16, c10::Device(c10::kCPU));
    EXPECT_EQ(at::linear(x, w).scalar_type(), at::kBFloat16);
  }
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
  AutocastGuard none(AmpMode::kFp32, c10::Device(c10::kCPU));
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
}

Batch BatchOf(const std::map<std::string, at::Tensor>& io) {
  auto opt = [&](const char* k) {
    auto it = io.find(std::string("batch.") + k);
    return it == io.end() ? at::Tensor() : it->second;
  };
  Batch b;
  b.input_ids = opt("input_ids");
  b.position_ids = opt("position_ids");
  b.img_feat = opt("img_feat");
  b.img_pos_feat = opt("img_pos_feat");
  b.img_type_ids = opt("img_type_ids");
  b.attn_masks = opt("attn_masks");
  b.gather_index = opt("gather_index");
  b.targets = opt("targets");
  return b;
}

struct AmpCase {
  const char* task;
  const char* variant;
  TaskKind kind;
};

class Bf16Parity : public ::testing::TestWithParam<AmpCase> {};

// Our heads under AutocastGuard(kBf16, cpu) against the restatement under
// torch.autocast("cpu", torch.bfloat16) of PyPI torch 2.11 (venv-cuda), same
// weights and batch. Torch 1.13 (the reference venv, our LibTorch) cannot be
// the reference: its CPU autocast has no layer_norm rule and throws on
// UNITER's first LayerNorm (trainer/amp.cc adds CUDA's fp32 rule). 2.11
// normalises bf16 inputs itself and returns bf16, we return fp32 from
// LayerNorm: so the tolerance covers bf16 rounding at different places:
// scores and losses within 2e-2 absolute (|scores| ~ 1; bf16 keeps 8 bits;
// measured ≤ 4e-3), gradients within 5e-2 of each one's largest entry + 1e-5
// (key biases have exactly-zero true gradients: both sides give bf16 noise;
// measured worst 3.5e-2 relative, pos_layer_norm.weight). fp32: ≤1e-5 (model_test).
TEST_P(Bf16Parity, HeadsMatchTorchAutocast) {
  const AmpCase& c = GetParam();
  const std::string dir = ::uniter::testing::TempDir(std::string("bf16_") + c.task + c.variant);
  const std::string python = CudaVenvPython();
  UNITER_SKIP_UNLESS_REFERENCE(
      ::uniter::testing::Run(Quote(python) + " -c 'import torch' 2>/dev/null").exit_code == 0,
      python + " lacks torch (scripts/install-deps.sh makes that venv)");
  const auto r = ::uniter::testing::Run("UNITER_REF_AUTOCAST=bf16 " + Quote(python) + " " +
                                        Quote(TestDir() + "/uniter_ref.py") + " heads " + Quote(dir) + " " + c.task +
                                        " " + c.variant + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto io = LoadPlainDict(dir + "/io.pt");
  const UniterConfig config = UniterConfig::FromJsonFile(dir + "/model.json");
  TaskOptions options{c.kind, c.variant, io.at("out.scores").size(1)};
  at::manual_seed(0);
  TaskModel model = MakeTaskModel(config, options);
  {
    at::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) p.value().copy_(io.at(p.key()));
  }
  model->eval();
  const Batch batch = BatchOf(io);
  at::Tensor scores, loss, train_loss;
  {
    AutocastGuard autocast(AmpMode::kBf16, c10::Device(c10::kCPU));
    scores = model->Scores(batch);
    loss = model->Loss(scores, batch);
    train_loss = model->TrainLoss(loss, batch);
  }
  train_loss.backward();
  const at::Tensor ref_scores = io.at("out.scores");
  ASSERT_EQ(scores.scalar_type(), ref_scores.scalar_type()) << "autocast gave another output dtype";
  auto diff = [](const at::Tensor& a, const at::Tensor& b) {
    return (a.detach().to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  };
  std::fprintf(stderr, "bf16 %s %s: max |scores diff| %.3g, |train loss diff| %.3g\n", c.task, c.variant,
               diff(scores, ref_scores), diff(train_loss.reshape({1}), io.at("out.train_loss")));
  EXPECT_LE(diff(scores, ref_scores), 2e-2) << "scores";
  EXPECT_LE(diff(loss, io.at("out.loss")), 2e-2) << "loss";
  EXPECT_LE(diff(train_loss.reshape({1}), io.at("out.train_loss")), 2e-2) << "train loss";
  for (const auto& p : model->named_parameters()) {
    auto it = io.find("grad." + p.key());
    if (it == io.end()) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_LE(diff(p.value().grad(), it->second), 5e-2 * it->second.abs().max().item<double>() + 1e-5)
        << "grad " << p.key();
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, Bf16Parity,
                         ::testing::Values(AmpCase{"vqa", "", TaskKind::kVqa},
                                           AmpCase{"nlvr2", "paired", TaskKind::kNlvr2},
                                           AmpCase{"nlvr2", "paired-attn", TaskKind::kNlvr2}),
                         [](const auto& info) {
                           std::string name = std::string(info.param.task) + info.param.variant;
                           std::erase(name, '-');
                           return name;
                         });

// An fp16 run's checkpoint holds fp16 tensors (apex O2's model), the fp32
// weights rounded to fp16; read back by Python's torch.load.
TEST(Checkpoint, Fp16RunSavesHalfTensors) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  UniterConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 32;
  c.max_position_embeddings = 20;
  TaskOptions o{TaskKind::kVe, "", 3};
  Model model(c, o, 3);
  const std::string dir = ::uniter::testing::TempDir("fp16_ckpt");
  model.Save(dir + "/half.pt", CheckpointDtype::kFloat16);
  model.Save(dir + "/full.pt");
  const auto py = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import sys, torch; h, f = (torch.load(p) for p in sys.argv[1:]); assert h.keys() == f.keys(); "
            "assert all(v.dtype == torch.float16 for v in h.values()), 'not fp16'; "
            "assert all(v.dtype == torch.float32 for v in f.values()), 'not fp32'; "
            "assert all(torch.equal(h[k], f[k].half()) for k in h), 'not the rounded weights'; print(len(h))") +
      " " + Quote(dir + "/half.pt") + " " + Quote(dir + "/full.pt") + " 2>&1");
  ASSERT_EQ(py.exit_code, 0) << py.out;
  EXPECT_EQ(std::stoll(py.out), static_cast<long long>(model.ParameterNames().size()));
}

}  // namespace
}  // namespace uniter::trainer
