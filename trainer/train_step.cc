#include "trainer/internal/train_step.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/dropout.h>

#include <string>
#include <utility>

namespace uniter::trainer {

std::vector<at::Tensor> ModelTensors(const torch::nn::Module& model) {
  std::vector<at::Tensor> tensors;
  for (const auto& p : model.parameters()) tensors.push_back(p.detach());
  for (const auto& b : model.buffers()) tensors.push_back(b.detach());
  return tensors;
}

void SetDropout(torch::nn::Module& model, double p) {
  for (const auto& m : model.modules())
    if (auto* d = dynamic_cast<torch::nn::DropoutImpl*>(m.get())) d->options.p(p);
}

std::unique_ptr<optim::AdamW> MakeTaskOptimizer(TaskModelImpl& model, TaskKind task, const TrainOptions& o) {
  optim::ParamGroupOptions groups;
  groups.weight_decay = o.weight_decay;
  groups.lr_mul = o.lr_mul;
  if (task == TaskKind::kVqa) groups.head_keys = {"vqa_output"};
  if (task == TaskKind::kVcr) groups.head_keys = {"vcr_output"};
  if (task == TaskKind::kRe) groups.head_keys = {"re_output"};
  optim::AdamWOptions ao;
  ao.lr = o.learning_rate;
  ao.beta1 = o.beta1;
  ao.beta2 = o.beta2;
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& p : model.named_parameters()) named.emplace_back(p.key(), p.value());
  return std::make_unique<optim::AdamW>(optim::AdamW::FromNamedParameters(named, groups, ao));
}

at::Tensor ForwardBackward(TaskModelImpl& model, const Batch& batch, const StepContext& ctx) {
  const Batch b = ToDevice(batch, ctx.device, ctx.pin);
  return ForwardBackward([&] { return model.TrainLoss(model.Loss(model.Scores(b), b), b); }, ctx);
}

at::Tensor ForwardBackward(const std::function<at::Tensor()>& loss_fn, const StepContext& ctx) {
  at::Tensor loss;
  {
    AutocastGuard autocast(ctx.amp, ctx.device);
    loss = loss_fn();
  }
  (ctx.scaler ? ctx.scaler->Scale(loss) : loss).backward();
  return loss.detach();
}

UpdateResult ApplyUpdate(optim::AdamW& optimizer, const std::vector<at::Tensor>& params, double lr,
                         double grad_norm, LossScaler* scaler) {
  optimizer.SetLr(lr);
  optimizer.RestoreZeroGrads();
  UpdateResult r;
  const bool scaled = scaler != nullptr && scaler->enabled();
  r.overflow = scaled && scaler->UnscaleAndCheck(params);
  optim::GradClip clip;
  if (grad_norm != -1) {
    clip = optim::ComputeGradClip(params, grad_norm);
    r.grad_norm = clip.norm;
  }
  if (!r.overflow) optimizer.Step(clip.coef);  // the clip's scaling inside the update's one pass
  optimizer.ZeroGrad();
  if (scaled) scaler->Update(r.overflow);
  return r;
}

}  // namespace uniter::trainer
