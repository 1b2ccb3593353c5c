// UNITER's AdamW (optim/adamw.py, Hugging Face's "weight decay fix" version)
// and torch.nn.utils.clip_grad_norm_. Not torch.optim.AdamW: the bias
// correction is folded into the step size, eps is added to √v, and the decay
// p −= lr·wd·p is applied after the Adam update, to the updated p.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "trainer/optim/param_groups.h"

namespace uniter::trainer::optim {

struct AdamWOptions {
  double lr = 1e-3;      // initial lr of every group (the loop sets it each step)
  double beta1 = 0.9;    // configs: betas [0.9, 0.98]
  double beta2 = 0.999;
  double eps = 1e-6;
  bool correct_bias = true;
};

// Not thread safe. Parameters are updated in place (under no-grad).
class AdamW {
 public:
  struct Group {
    std::vector<std::string> names;
    std::vector<at::Tensor> params;
    double weight_decay = 0.0;
    double lr_mul = 1.0;
    double lr = 0.0;
  };

  AdamW(std::vector<Group> groups, const AdamWOptions& options);
  // UNITER's grouping of named parameters (BuildParamGroups) into an optimizer.
  static AdamW FromNamedParameters(const std::vector<std::pair<std::string, at::Tensor>>& named,
                                   const ParamGroupOptions& groups, const AdamWOptions& options);

  // The loop's per-step lr: each group gets lr · lr_mul.
  void SetLr(double lr);
  // One update. A parameter whose grad is undefined is skipped entirely (no
  // moment update, no step count, no decay), as UNITER's `p.grad is None`.
  // grad_scale: every grad read as grad × grad_scale (fp32), the bits
  // clip_grad_norm_'s in-place grad.mul_(coef) would leave, without its pass
  // over the grads (which are left as they are).
  void Step(float grad_scale = 1.0f);
  // PyTorch 1.1's zero_grad (defined grads zeroed in place, and kept), in two
  // halves: ZeroGrad releases the defined grads, so that the next backward's
  // AccumulateGrad takes its gradient as the grad (no memset of every grad and
  // no add into zeros); RestoreZeroGrads then gives a released parameter that
  // backward left without a gradient its zero grad back. Call RestoreZeroGrads
  // before reading the grads after a backward (clipping, all-reduce, loss-scale
  // checks); Step calls it itself.
  void ZeroGrad();
  void RestoreZeroGrads();
  // As if ZeroGrad had released these parameters' grads (a resumed run's
  // parameters stepped before the save: later steps keep stepping them).
  void MarkGradsZeroed(const std::set<std::string>& names);

  // Every state tensor with a stable name: "<param>.step" (0-d int64),
  // "<param>.exp_avg", "<param>.exp_avg_sq", for parameters stepped at least once,
  // in group order. The tensors are the live state (save them as they are).
  std::vector<std::pair<std::string, at::Tensor>> StateTensors() const;
  // Restores what StateTensors() gave (copies). Throws uniter::FormatError
  // naming the entry on an unknown parameter, a missing part, or a shape mismatch.
  void LoadStateTensors(const std::vector<std::pair<std::string, at::Tensor>>& state);

  const std::vector<Group>& groups() const { return groups_; }
  std::vector<at::Tensor> AllParams() const;

 private:
  struct ParamState {
    int64_t step = 0;
    at::Tensor exp_avg;
    at::Tensor exp_avg_sq;
  };

  // The one-pass kernel for contiguous float CPU tensors; ATen's ops otherwise.
  bool Fusable(const at::Tensor& p, const at::Tensor& grad, const ParamState& s) const;
  void FusedUpdate(at::Tensor& p, const at::Tensor& grad, ParamState& s, double step_size, double decay,
                   float grad_scale) const;

  std::vector<Group> groups_;
  AdamWOptions options_;
  std::map<std::string, ParamState> state_;
  std::vector<std::vector<bool>> released_;  // per group and member: grad released by ZeroGrad
  at::Tensor scratch_;  // √v + eps of the parameter being updated (largest size seen)
};

// torch.nn.utils.clip_grad_norm_ (2-norm, torch 1.13's arithmetic): returns the
// total norm of the defined grads and scales them by min(1, max_norm/(norm + 1e-6)).
// UNITER skips the call when grad_norm is −1.
double ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm);

// The same norm and coefficient without touching the grads: pass `coef` to
// AdamW::Step to get the clipped update in the optimizer's one pass.
struct GradClip {
  double norm = 0.0;
  float coef = 1.0f;
};
GradClip ComputeGradClip(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace uniter::trainer::optim
