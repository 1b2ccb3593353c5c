// One training step as the finetuning loop runs it (train_nlvr2.py's inner
// loop), shared by the loop and bench/trainer_step_bench so the benchmark
// times the loop's own code path.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <vector>

#include "trainer/internal/amp.h"
#include "trainer/internal/batch.h"
#include "trainer/internal/task_model.h"
#include "trainer/model.h"
#include "trainer/optim/internal/adamw.h"
#include "trainer/train.h"

namespace uniter::trainer {

// UNITER's set_dropout: every nn.Dropout (MultiheadAttention's float is not one).
void SetDropout(torch::nn::Module& model, double p);
// The module's parameters then buffers, detached: what ranks share at start.
std::vector<at::Tensor> ModelTensors(const torch::nn::Module& model);

// UNITER's build_optimizer for `task`: its parameter groups (VQA / VCR / RE:
// the vqa_output / vcr_output / re_output head groups with lr_mul), AdamW
// with the options' lr and betas.
std::unique_ptr<optim::AdamW> MakeTaskOptimizer(TaskModelImpl& model, TaskKind task, const TrainOptions& options);

// Where and how a step runs: the device batches move to (through pinned
// memory when `pin`), autocast, and the loss scaler (nullptr or disabled:
// none). The default is the CPU in fp32.
struct StepContext {
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  AmpMode amp = AmpMode::kFp32;
  LossScaler* scaler = nullptr;
  bool pin = false;
};

// One micro-batch: the batch on the device, scores, task loss and its train
// reduction under autocast, backward of the (scaled) loss (grads
// accumulate). Returns the unscaled scalar loss, detached.
at::Tensor ForwardBackward(TaskModelImpl& model, const Batch& batch, const StepContext& ctx = {});

// The same step for any model (the pretraining loop's): `loss` (the scalar
// train loss of a batch already on ctx.device) computed under autocast, its
// scaled value backpropagated. Returns the unscaled loss, detached.
at::Tensor ForwardBackward(const std::function<at::Tensor()>& loss, const StepContext& ctx);

struct UpdateResult {
  double grad_norm = -1;  // before clipping; −1 when not clipped
  bool overflow = false;  // the scaler found inf/nan: the step was skipped
};

// The update at an accumulation boundary: lr for every group (× lr_mul); with
// a scaler, grads unscaled and checked (apex: an overflow skips the AdamW step
// while the schedule advances, and backs the scale off); clip_grad_norm_
// unless grad_norm is −1; AdamW; zero_grad.
UpdateResult ApplyUpdate(optim::AdamW& optimizer, const std::vector<at::Tensor>& params, double lr,
                         double grad_norm, LossScaler* scaler = nullptr);

}  // namespace uniter::trainer
