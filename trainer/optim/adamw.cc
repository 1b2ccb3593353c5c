#include "trainer/optim/internal/adamw.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <set>

#include "common/error.h"
#include "trainer/optim/internal/adamw_kernel.h"

namespace uniter::trainer::optim {

AdamW::AdamW(std::vector<Group> groups, const AdamWOptions& options) : groups_(std::move(groups)), options_(options) {
  if (options.lr < 0 || options.beta1 < 0 || options.beta1 >= 1 || options.beta2 < 0 || options.beta2 >= 1 ||
      options.eps < 0)
    throw UsageError("AdamW: needs lr ≥ 0, betas in [0, 1), eps ≥ 0");
  std::set<std::string> seen;
  for (Group& g : groups_) {
    if (g.names.size() != g.params.size()) throw UsageError("AdamW: a group's names and params differ in number");
    for (const std::string& n : g.names)
      if (!seen.insert(n).second) throw UsageError("AdamW: parameter '" + n + "' is in two groups");
    g.lr = options.lr;
    released_.emplace_back(g.params.size(), false);
  }
}

AdamW AdamW::FromNamedParameters(const std::vector<std::pair<std::string, at::Tensor>>& named,
                                 const ParamGroupOptions& group_options, const AdamWOptions& options) {
  std::vector<std::string> names;
  for (const auto& [n, p] : named) names.push_back(n);
  std::vector<Group> groups;
  for (const ParamGroup& pg : BuildParamGroups(names, group_options)) {
    Group g;
    g.weight_decay = pg.weight_decay;
    g.lr_mul = pg.lr_mul;
    for (size_t i : pg.members) {
      g.names.push_back(named[i].first);
      g.params.push_back(named[i].second);
    }
    groups.push_back(std::move(g));
  }
  return AdamW(std::move(groups), options);
}

void AdamW::SetLr(double lr) {
  for (Group& g : groups_) g.lr = lr * g.lr_mul;
}

void AdamW::Step(float grad_scale) {
  RestoreZeroGrads();
  at::NoGradGuard no_grad;
  const double beta1 = options_.beta1, beta2 = options_.beta2;
  for (const Group& g : groups_) {
    for (size_t i = 0; i < g.params.size(); ++i) {
      at::Tensor p = g.params[i];
      if (!p.grad().defined()) continue;
      ParamState& s = state_[g.names[i]];
      if (s.step == 0 && !s.exp_avg.defined()) {
        s.exp_avg = at::zeros_like(p, at::MemoryFormat::Preserve);
        s.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Preserve);
      }
      const bool fused = Fusable(p, p.grad(), s);
      // A Scalar multiplier on a float tensor multiplies in float: mul_(coef)'s bits.
      const at::Tensor grad = fused || grad_scale == 1.0f ? p.grad() : p.grad() * grad_scale;
      s.step += 1;
      double step_size = g.lr;
      if (options_.correct_bias) {
        // Python: lr * math.sqrt(1 - b2**t) / (1 - b1**t), in doubles, left to right.
        const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(s.step));
        const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(s.step));
        step_size = step_size * std::sqrt(bc2) / bc1;
      }
      const double decay = g.weight_decay > 0.0 ? -g.lr * g.weight_decay : 0.0;
      if (fused) {
        FusedUpdate(p, grad, s, step_size, decay, grad_scale);
        continue;
      }
      s.exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
      s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
      // √v + eps into one reused buffer: a fresh 440 MB of denominators per
      // UNITER-base step costs an mmap and its page faults each time.
      if (scratch_.numel() < p.numel() || scratch_.scalar_type() != p.scalar_type() || scratch_.device() != p.device())
        scratch_ = at::empty({p.numel()}, p.options());
      at::Tensor denom = scratch_.narrow(0, 0, p.numel()).view(p.sizes());
      at::sqrt_out(denom, s.exp_avg_sq).add_(options_.eps);
      p.addcdiv_(s.exp_avg, denom, -step_size);
      if (decay != 0.0) p.add_(p, decay);
    }
  }
}

bool AdamW::Fusable(const at::Tensor& p, const at::Tensor& grad, const ParamState& s) const {
  for (const at::Tensor* t : {&p, &grad, &s.exp_avg, &s.exp_avg_sq})
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous()) return false;
  return grad.sizes().equals(p.sizes());
}

void AdamW::FusedUpdate(at::Tensor& p, const at::Tensor& grad, ParamState& s, double step_size, double decay,
                        float grad_scale) const {
  // ATen's kernels see every Scalar as a float (value.to<float>()).
  const AdamWCoefficients c{static_cast<float>(options_.beta1),       static_cast<float>(1.0 - options_.beta1),
                            static_cast<float>(options_.beta2),       static_cast<float>(1.0 - options_.beta2),
                            static_cast<float>(options_.eps),         static_cast<float>(-step_size),
                            static_cast<float>(decay),                grad_scale};
  float* pp = p.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  float* mp = s.exp_avg.data_ptr<float>();
  float* vp = s.exp_avg_sq.data_ptr<float>();
  // Elementwise: any split over threads gives the same bits.
  at::parallel_for(0, p.numel(), at::internal::GRAIN_SIZE, [&](int64_t begin, int64_t end) {
    AdamWUpdate(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, c);
  });
}

void AdamW::ZeroGrad() {
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      at::Tensor p = groups_[gi].params[i];
      if (!p.grad().defined()) continue;
      p.mutable_grad() = at::Tensor();
      released_[gi][i] = true;
    }
  }
}

void AdamW::RestoreZeroGrads() {
  at::NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < groups_[gi].params.size(); ++i) {
      if (!released_[gi][i]) continue;
      at::Tensor p = groups_[gi].params[i];
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      released_[gi][i] = false;
    }
  }
}

std::vector<at::Tensor> AdamW::AllParams() const {
  std::vector<at::Tensor> out;
  for (const Group& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::StateTensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const Group& g : groups_) {
    for (const std::string& n : g.names) {
      auto it = state_.find(n);
      if (it == state_.end()) continue;
      out.emplace_back(n + ".step", at::scalar_tensor(it->second.step, at::kLong));
      out.emplace_back(n + ".exp_avg", it->second.exp_avg);
      out.emplace_back(n + ".exp_avg_sq", it->second.exp_avg_sq);
    }
  }
  return out;
}

void AdamW::LoadStateTensors(const std::vector<std::pair<std::string, at::Tensor>>& state) {
  std::map<std::string, const at::Tensor*> params;
  for (const Group& g : groups_)
    for (size_t i = 0; i < g.names.size(); ++i) params[g.names[i]] = &g.params[i];
  std::map<std::string, ParamState> loaded;
  std::map<std::string, int> parts;
  for (const auto& [key, t] : state) {
    const size_t dot = key.rfind('.');
    const std::string name = dot == std::string::npos ? key : key.substr(0, dot);
    const std::string part = dot == std::string::npos ? "" : key.substr(dot + 1);
    auto it = params.find(name);
    if (it == params.end()) throw FormatError("optimizer state for an unknown parameter", key);
    ParamState& s = loaded[name];
    if (part == "step") {
      if (t.numel() != 1) throw FormatError("optimizer step must be a scalar", key);
      s.step = t.to(at::kLong).item<int64_t>();
    } else if (part == "exp_avg" || part == "exp_avg_sq") {
      if (!t.sizes().equals(it->second->sizes()))
        throw FormatError("optimizer state shape " + std::string(c10::str(t.sizes())) + " differs from the parameter's " +
                              std::string(c10::str(it->second->sizes())),
                          key);
      (part == "exp_avg" ? s.exp_avg : s.exp_avg_sq) = t.to(it->second->options()).clone();
    } else {
      throw FormatError("unknown optimizer state entry", key);
    }
    parts[name] += 1;
  }
  for (const auto& [name, n] : parts)
    if (n != 3) throw FormatError("optimizer state needs step, exp_avg and exp_avg_sq", name);
  state_ = std::move(loaded);
}

void AdamW::MarkGradsZeroed(const std::set<std::string>& names) {
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].names.size(); ++i)
      if (names.count(groups_[gi].names[i])) released_[gi][i] = true;
}

namespace {

// The defined grads, their total 2-norm and min(1, max_norm/(norm + 1e-6)), as 0-d tensors.
struct ClipTerms {
  std::vector<at::Tensor> grads;
  at::Tensor total, coef;
};

ClipTerms Clip(const std::vector<at::Tensor>& params, double max_norm) {
  ClipTerms t;
  for (const at::Tensor& p : params)
    if (p.grad().defined()) t.grads.push_back(p.grad());
  if (t.grads.empty()) return t;
  std::vector<at::Tensor> norms;
  for (const at::Tensor& g : t.grads) norms.push_back(at::linalg_vector_norm(g, 2.0));
  t.total = at::linalg_vector_norm(at::stack(norms), 2.0);
  // torch: max_norm / (total + 1e-6) is reciprocal(total + 1e-6) * max_norm, then clamp(max=1).
  t.coef = at::clamp_max(at::reciprocal(t.total + 1e-6) * max_norm, 1.0);
  return t;
}

}  // namespace

double ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard no_grad;
  ClipTerms t = Clip(params, max_norm);
  if (t.grads.empty()) return 0.0;
  for (at::Tensor& g : t.grads) g.mul_(t.coef);
  return t.total.item<double>();
}

GradClip ComputeGradClip(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard no_grad;
  const ClipTerms t = Clip(params, max_norm);
  if (t.grads.empty()) return {};
  return {t.total.item<double>(), t.coef.to(at::kFloat).item<float>()};
}

}  // namespace uniter::trainer::optim
