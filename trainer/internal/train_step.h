// One training step as the finetuning loop runs it (train_nlvr2.py's inner
// loop), shared by the loop and bench/trainer_step_bench so the benchmark
// times the loop's own code path.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "trainer/internal/batch.h"
#include "trainer/internal/task_model.h"
#include "trainer/model.h"
#include "trainer/optim/internal/adamw.h"
#include "trainer/train.h"

namespace uniter::trainer {

// UNITER's build_optimizer for `task`: its parameter groups (VQA: vqa_output
// head groups with lr_mul), AdamW with the options' lr and betas.
std::unique_ptr<optim::AdamW> MakeTaskOptimizer(TaskModelImpl& model, TaskKind task, const TrainOptions& options);

// One micro-batch: scores, task loss, its train reduction, backward (grads
// accumulate). Returns the scalar loss, detached.
at::Tensor ForwardBackward(TaskModelImpl& model, const Batch& batch);

// The update at an accumulation boundary: lr for every group (× lr_mul),
// clip_grad_norm_ unless grad_norm is −1, AdamW, zero_grad. Returns the
// total grad norm before clipping, or −1 when not clipped.
double ApplyUpdate(optim::AdamW& optimizer, const std::vector<at::Tensor>& params, double lr, double grad_norm);

}  // namespace uniter::trainer
