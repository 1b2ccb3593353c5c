// The trainer's device paths: the fused attention (at::scaled_dot_product_attention,
// LibTorch >= 2) against UNITER's explicit form, on the CPU and on CUDA, and
// fp16 / bf16 autocast train steps on CUDA (loss scaling included) against
// fp32 steps on the same GPU, and `uniter infer`'s forward (InferScores)
// under CUDA fp16/bf16 and CPU bf16 autocast against the CPU fp32 one.
// Model-level only (no databases): this file is
// also built on the GPU machine by scripts/device-check.sh, where LMDB and
// TBB are absent. Tests needing what this build lacks skip with the reason.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "trainer/config.h"
#include "trainer/internal/amp.h"
#include "trainer/internal/task_model.h"
#include "trainer/internal/uniter_model.h"
#include "trainer/optim/internal/adamw.h"

namespace uniter::trainer {
namespace {

UniterConfig SmallConfig() {
  UniterConfig c;
  c.vocab_size = 120;
  c.hidden_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 128;
  c.max_position_embeddings = 64;
  c.img_dim = 48;
  return c;
}

// A VQA-shaped batch: `b` rows of ragged text + image lengths, UNITER's
// gather_index and attention masks, soft targets over `answers`.
Batch MakeBatch(const UniterConfig& c, int64_t answers, uint64_t seed) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::vector<int64_t> tl = {7, 4, 10, 5}, nbb = {5, 8, 3, 6};
  const int64_t b = 4, t = 10, n = 8;
  int64_t out = 0;
  for (int64_t i = 0; i < b; ++i) out = std::max(out, tl[i] + nbb[i]);
  Batch batch;
  batch.input_ids = at::zeros({b, t}, at::kLong);
  batch.img_feat = at::zeros({b, n, c.img_dim});
  batch.img_pos_feat = at::zeros({b, n, 7});
  batch.attn_masks = at::zeros({b, out}, at::kLong);
  batch.gather_index = at::arange(out, at::kLong).unsqueeze(0).repeat({b, 1});
  for (int64_t i = 0; i < b; ++i) {
    batch.input_ids[i].slice(0, 0, tl[i]).copy_(at::randint(1, c.vocab_size, {tl[i]}, g, at::kLong));
    batch.img_feat[i].slice(0, 0, nbb[i]).copy_(at::rand({nbb[i], c.img_dim}, g) * 2);
    batch.img_pos_feat[i].slice(0, 0, nbb[i]).copy_(at::rand({nbb[i], 7}, g));
    batch.attn_masks[i].slice(0, 0, tl[i] + nbb[i]).fill_(1);
    batch.gather_index[i].slice(0, tl[i], tl[i] + nbb[i]).copy_(at::arange(t, t + nbb[i], at::kLong));
  }
  batch.position_ids = at::arange(t, at::kLong).unsqueeze(0);
  batch.targets = at::rand({b, answers}, g) * (at::rand({b, answers}, g) < 0.3).to(at::kFloat);
  batch.num_examples = b;
  return batch;
}

// A seeded VQA (or `task`) model with its weights nudged off UNITER's init
// (zero biases, unit LayerNorms) so every parameter matters.
TaskModel MakeModel(const UniterConfig& c, int64_t answers, TaskKind task = TaskKind::kVqa) {
  TaskOptions o;
  o.task = task;
  o.num_answers = answers;
  at::manual_seed(11);
  TaskModel m = MakeTaskModel(c, o);
  at::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.add_(at::randn_like(p) * 0.05);
  return m;
}

double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU, at::kDouble) - b.to(at::kCPU, at::kDouble)).abs().max().item<double>();
}

struct KernelScope {
  explicit KernelScope(AttentionKernel k) { SetAttentionKernel(k); }
  ~KernelScope() { SetAttentionKernel(AttentionKernel::kAuto); }
};

// Scores and every gradient with the fused and the explicit attention, fp32,
// eval mode (no dropout). Tolerance 1e-5 absolute on scores (|scores| ~ 1) and
// 1e-5 of each gradient's largest entry.
void ExpectFusedEqualsExplicit(const c10::Device& device) {
  const UniterConfig c = SmallConfig();
  const int64_t answers = 11;
  const Batch cpu_batch = MakeBatch(c, answers, 3);
  const Batch batch = ToDevice(cpu_batch, device, false);
  std::vector<at::Tensor> scores, grads;
  for (AttentionKernel k : {AttentionKernel::kExplicit, AttentionKernel::kFused}) {
    KernelScope scope(k);
    TaskModel m = MakeModel(c, answers);
    m->to(device);
    m->eval();
    at::Tensor s = m->Scores(batch);
    m->TrainLoss(m->Loss(s, batch), batch).backward();
    scores.push_back(s.detach());
    std::vector<at::Tensor> g;
    for (const auto& p : m->parameters())
      if (p.grad().defined()) g.push_back(p.grad().flatten());
    grads.push_back(at::cat(g));
  }
  EXPECT_LE(MaxAbsDiff(scores[0], scores[1]), 1e-5) << "scores";
  EXPECT_LE(MaxAbsDiff(grads[0], grads[1]), 1e-5 * grads[0].abs().max().item<double>() + 1e-7) << "gradients";
}

TEST(FusedAttention, EqualsExplicitOnCpu) {
  if (!HasFusedAttention())
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION
                 << " has no at::scaled_dot_product_attention (>= 2 has: scripts/device-check.sh --cpu runs this "
                    "test against PyPI torch's LibTorch)";
  ExpectFusedEqualsExplicit(c10::Device(c10::kCPU));
}

TEST(FusedAttention, EqualsExplicitOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a LibTorch without CUDA)";
  if (!HasFusedAttention()) GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no fused attention";
  // TF32 would change the matmuls of one form and not the other's kernels.
  at::globalContext().setAllowTF32CuBLAS(false);
  ExpectFusedEqualsExplicit(c10::Device(c10::kCUDA, 0));
}

// Steps of UNITER's update (autocast forward, scaled backward, unscale +
// check, clip 2.0, AdamW, scaler update) on CUDA; returns the losses.
std::vector<double> TrainSteps(AmpMode mode, int steps, LossScaler* scaler) {
  const c10::Device device(c10::kCUDA, 0);
  const UniterConfig c = SmallConfig();
  const int64_t answers = 11;
  const Batch batch = ToDevice(MakeBatch(c, answers, 5), device, /*pin=*/true);
  TaskModel m = MakeModel(c, answers);
  m->to(device);
  m->eval();  // no dropout: the precisions are compared, not the random masks
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& p : m->named_parameters()) named.emplace_back(p.key(), p.value());
  optim::AdamWOptions ao;
  ao.lr = 1e-3;
  ao.beta2 = 0.98;
  optim::AdamW opt = optim::AdamW::FromNamedParameters(named, {}, ao);
  const std::vector<at::Tensor> params = opt.AllParams();
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    at::Tensor loss;
    {
      AutocastGuard autocast(mode, device);
      loss = m->TrainLoss(m->Loss(m->Scores(batch), batch), batch);
    }
    EXPECT_EQ(loss.scalar_type(), at::kFloat) << "the loss is computed in fp32 under autocast";
    scaler->Scale(loss).backward();
    losses.push_back(loss.item<double>());
    const bool overflow = scaler->UnscaleAndCheck(params);
    optim::ClipGradNorm(params, 2.0);
    if (!overflow) opt.Step();
    opt.ZeroGrad();
    scaler->Update(overflow);
  }
  return losses;
}

// fp16 (scaled) and bf16 autocast train the same model as fp32 does: the
// loss falls and stays within 2 % (fp16) / 5 % (bf16) of fp32's at every step.
TEST(CudaTrain, Fp16AndBf16StepsTrackFp32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a LibTorch without CUDA)";
  at::globalContext().setAllowTF32CuBLAS(false);
  const int steps = 30;
  LossScaler none(false), fp16(true), bf16(false);
  const std::vector<double> ref = TrainSteps(AmpMode::kFp32, steps, &none);
  const std::vector<double> half = TrainSteps(AmpMode::kFp16, steps, &fp16);
  const std::vector<double> bf = TrainSteps(AmpMode::kBf16, steps, &bf16);
  ASSERT_LT(ref.back(), 0.8 * ref.front()) << "fp32 did not learn the batch";
  for (int i = 0; i < steps; ++i) {
    EXPECT_NEAR(half[i], ref[i], 0.02 * ref[i]) << "fp16 step " << i;
    EXPECT_NEAR(bf[i], ref[i], 0.05 * ref[i]) << "bf16 step " << i;
  }
  // 2^16 × these small losses never overflows: no step was skipped.
  EXPECT_EQ(fp16.scale(), 65536.0f);
  EXPECT_EQ(fp16.growth_tracker(), steps);
}

// An inf gradient under fp16 on CUDA: the step is skipped (weights
// untouched), the scale halves; the next finite step moves the weights.
TEST(CudaTrain, Fp16OverflowSkipsTheStep) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a LibTorch without CUDA)";
  const c10::Device device(c10::kCUDA, 0);
  const UniterConfig c = SmallConfig();
  const Batch batch = ToDevice(MakeBatch(c, 11, 5), device, false);
  TaskModel m = MakeModel(c, 11);
  m->to(device);
  std::vector<at::Tensor> params = m->parameters();
  LossScaler scaler(true);
  for (int round = 0; round < 2; ++round) {
    {
      AutocastGuard autocast(AmpMode::kFp16, device);
      scaler.Scale(m->TrainLoss(m->Loss(m->Scores(batch), batch), batch)).backward();
    }
    if (round == 0) params[3].mutable_grad().view(-1)[0].fill_(std::numeric_limits<float>::infinity());
    const at::Tensor before = params[0].detach().clone();
    const bool overflow = scaler.UnscaleAndCheck(params);
    EXPECT_EQ(overflow, round == 0);
    if (!overflow) {
      at::NoGradGuard no_grad;
      for (auto& p : params)
        if (p.grad().defined()) p.sub_(p.grad() * 1e-2);
    }
    EXPECT_EQ(at::equal(before, params[0].detach()), round == 0) << "round " << round;
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().zero_();
    scaler.Update(overflow);
  }
  EXPECT_EQ(scaler.scale(), 32768.0f);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

InferPlacement Placement(const c10::Device& device, AmpMode amp) {
  InferPlacement p;
  p.device = device;
  p.amp = amp;
  return p;
}

// `uniter infer`'s forward (InferScores: batch to the device, Scores under
// autocast, back as fp32 on the CPU) on cuda:0 against the CPU fp32 forward
// of the same weights, VQA and ITM heads: CUDA fp32 within 1e-4 of the
// largest |score| (TF32 off: only summation order differs), fp16 within 1%
// (10 significant bits, a few roundings deep: ~0.1% expected) and bf16 within
// 3% (8 bits: the CPU bf16 inference tests measure 0.3-1.1%), and neither
// bit-identical to CUDA fp32 (autocast ran).
TEST(CudaInfer, Fp16AndBf16ScoresNearCpuFp32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a LibTorch without CUDA)";
  at::globalContext().setAllowTF32CuBLAS(false);
  const c10::Device cuda(c10::kCUDA, 0);
  const UniterConfig c = SmallConfig();
  for (const TaskKind task : {TaskKind::kVqa, TaskKind::kItm}) {
    const char* name = task == TaskKind::kVqa ? "vqa" : "itm";
    const Batch batch = MakeBatch(c, 11, 7);
    TaskModel m = MakeModel(c, 11, task);
    m->eval();
    at::NoGradGuard no_grad;
    const at::Tensor ref = InferScores(*m, batch, {});
    m->to(cuda);
    const at::Tensor fp32 = InferScores(*m, batch, Placement(cuda, AmpMode::kFp32));
    const at::Tensor fp16 = InferScores(*m, batch, Placement(cuda, AmpMode::kFp16));
    const at::Tensor bf16 = InferScores(*m, batch, Placement(cuda, AmpMode::kBf16));
    const double scale = ref.abs().max().item<double>();
    ASSERT_GT(scale, 0.0) << name;
    for (const at::Tensor* t : {&fp32, &fp16, &bf16}) {
      EXPECT_TRUE(t->device().is_cpu()) << name;
      EXPECT_EQ(t->scalar_type(), at::kFloat) << name;
      EXPECT_EQ(t->sizes(), ref.sizes()) << name;
    }
    std::fprintf(stderr, "%s: scale %.4g, |cuda fp32 - cpu| %.3g, |fp16 - cpu| %.3g, |bf16 - cpu| %.3g\n", name, scale,
                 MaxAbsDiff(fp32, ref), MaxAbsDiff(fp16, ref), MaxAbsDiff(bf16, ref));
    EXPECT_LE(MaxAbsDiff(fp32, ref), 1e-4 * scale) << name;
    EXPECT_LE(MaxAbsDiff(fp16, ref), 1e-2 * scale) << name;
    EXPECT_LE(MaxAbsDiff(bf16, ref), 3e-2 * scale) << name;
    EXPECT_FALSE(at::equal(fp16, fp32)) << name << ": fp16 autocast did not run";
    EXPECT_FALSE(at::equal(bf16, fp32)) << name << ": bf16 autocast did not run";
  }
}

// The same forward on the CPU under bf16 autocast (runs everywhere): fp32 on
// the CPU out, within 3% of the fp32 forward's largest |score|, not equal to it.
TEST(CpuInfer, Bf16ScoresNearFp32) {
  const UniterConfig c = SmallConfig();
  const Batch batch = MakeBatch(c, 11, 7);
  TaskModel m = MakeModel(c, 11);
  m->eval();
  at::NoGradGuard no_grad;
  const at::Tensor ref = InferScores(*m, batch, {});
  const at::Tensor bf16 = InferScores(*m, batch, Placement(c10::Device(c10::kCPU), AmpMode::kBf16));
  EXPECT_EQ(bf16.scalar_type(), at::kFloat);
  const double scale = ref.abs().max().item<double>();
  ASSERT_GT(scale, 0.0);
  EXPECT_LE(MaxAbsDiff(bf16, ref), 3e-2 * scale);
  EXPECT_FALSE(at::equal(bf16, ref)) << "bf16 autocast did not run";
}

}  // namespace
}  // namespace uniter::trainer
