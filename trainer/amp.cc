#include "trainer/internal/amp.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR < 2
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#endif

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/error.h"

namespace uniter::trainer {
namespace {

int64_t LocalRank() {
  const char* v = std::getenv("LOCAL_RANK");
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long long r = std::strtoll(v, &end, 10);
  if (*end != '\0' || r < 0) throw UsageError(std::string("LOCAL_RANK '") + v + "' is not a GPU index");
  return r;
}

c10::Device CudaDevice(int64_t index, const std::string& spec) {
  if (!torch::cuda::is_available())
    throw UsageError("--device " + spec + ": " +
                     (at::hasCUDA() ? "no CUDA device is present" : "this LibTorch was built without CUDA"));
  const int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= n)
    throw UsageError("--device " + spec + ": GPU " + std::to_string(index) + " asked for, " + std::to_string(n) +
                     " present");
  return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
}

// The autocast switches of LibTorch 1.13 (one per device type) and of 2.x
// (keyed by device type).
bool AutocastEnabled(c10::DeviceType t) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(t);
#else
  return t == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void SetAutocast(c10::DeviceType t, bool enabled, c10::ScalarType dtype) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(t, enabled);
  at::autocast::set_autocast_dtype(t, dtype);
#else
  if (t == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

c10::ScalarType AutocastDtype(c10::DeviceType t) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::get_autocast_dtype(t);
#else
  return t == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

#if TORCH_VERSION_MAJOR < 2
// LibTorch 1.13's CPU autocast has no rule for layer_norm, so a bf16 input
// meets the fp32 weight and the kernel throws ("expected scalar type
// BFloat16 but found Float"): every UNITER LayerNorm would. Given here the
// rule CUDA autocast has (layer_norm in fp32, fp32 out); LibTorch >= 2
// normalises mixed bf16/fp32 on the CPU itself.
at::Tensor LayerNormInFp32(const at::Tensor& input, at::IntArrayRef normalized_shape,
                           const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias, double eps,
                           bool cudnn_enable) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  auto fp32 = [](const c10::optional<at::Tensor>& t) -> c10::optional<at::Tensor> {
    if (!t.has_value() || !t->defined() || !t->is_floating_point()) return t;
    return t->to(at::kFloat);
  };
  const at::Tensor x = input.is_floating_point() ? input.to(at::kFloat) : input;
  return at::layer_norm(x, normalized_shape, fp32(weight), fp32(bias), eps, cudnn_enable);
}

TORCH_LIBRARY_IMPL(aten, AutocastCPU, m) { m.impl("layer_norm", TORCH_FN(LayerNormInFp32)); }
#endif

}  // namespace

c10::Device ResolveDevice(const std::string& spec) {
  if (spec == "cpu") return c10::Device(c10::DeviceType::CPU);
  if (spec == "auto") return torch::cuda::is_available() ? CudaDevice(LocalRank(), spec) : c10::Device(c10::kCPU);
  if (spec == "cuda") return CudaDevice(LocalRank(), spec);
  const std::string prefix = "cuda:";
  if (spec.rfind(prefix, 0) == 0 && spec.size() > prefix.size() && spec.size() <= prefix.size() + 3 &&
      spec.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
    return CudaDevice(std::stoll(spec.substr(prefix.size())), spec);
  throw UsageError("--device '" + spec + "': expected auto, cpu, cuda or cuda:N");
}

Precision ResolvePrecision(bool fp16, const std::string& amp_dtype, const c10::Device& device) {
  Precision p;
  if (amp_dtype == "bf16") {
    p.mode = AmpMode::kBf16;
  } else if (amp_dtype == "fp16" || (amp_dtype.empty() && fp16)) {
    p.mode = AmpMode::kFp16;
  } else if (!amp_dtype.empty() && amp_dtype != "fp32") {
    throw UsageError("--amp_dtype '" + amp_dtype + "': expected fp32, fp16 or bf16");
  }
  if (p.mode == AmpMode::kFp16 && !device.is_cuda()) {
    // fp16 autocast on the CPU is slower than fp32 and UNITER never did it.
    p.mode = AmpMode::kFp32;
    p.notice = "fp16 (apex O2 in UNITER) needs CUDA; running fp32 on the CPU (--amp_dtype bf16 for CPU autocast)";
  }
  return p;
}

const char* AmpModeName(AmpMode mode) {
  switch (mode) {
    case AmpMode::kFp16:
      return "fp16";
    case AmpMode::kBf16:
      return "bf16";
    case AmpMode::kFp32:
      break;
  }
  return "fp32";
}

InferPlacement ResolveInferPlacement(const std::string& device, bool fp16, const std::string& amp_dtype) {
  InferPlacement p;
  p.device = ResolveDevice(device);
  Precision precision = ResolvePrecision(fp16, amp_dtype, p.device);
  p.amp = precision.mode;
  p.notice = std::move(precision.notice);
  return p;
}

void AnnounceInferPlacement(const InferPlacement& p, bool quiet) {
  if (quiet) return;
  if (!p.notice.empty()) std::fprintf(stderr, "infer: %s\n", p.notice.c_str());
  if (p.device.is_cuda() || p.amp != AmpMode::kFp32)
    std::fprintf(stderr, "infer: on %s, %s\n", p.device.str().c_str(), AmpModeName(p.amp));
}

at::Tensor ToCpuFloat(const at::Tensor& scores) { return scores.to(at::kCPU, at::kFloat).contiguous(); }

AutocastGuard::AutocastGuard(AmpMode mode, const c10::Device& device) {
  if (mode == AmpMode::kFp32) return;
  active_ = true;
  type_ = device.type();
  was_enabled_ = AutocastEnabled(type_);
  was_dtype_ = AutocastDtype(type_);
  SetAutocast(type_, true, mode == AmpMode::kFp16 ? at::kHalf : at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocast(type_, was_enabled_, was_dtype_);
}

LossScaler::LossScaler(bool enabled, const LossScalerOptions& options)
    : enabled_(enabled), options_(options), scale_(static_cast<float>(options.init_scale)) {
  if (!(options.init_scale > 0) || !(options.growth_factor > 1) || !(options.backoff_factor > 0) ||
      !(options.backoff_factor < 1) || options.growth_interval <= 0)
    throw UsageError("loss scaler: needs init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, growth_interval > 0");
}

at::Tensor LossScaler::Scale(const at::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool LossScaler::UnscaleAndCheck(const std::vector<at::Tensor>& params) const {
  at::NoGradGuard no_grad;
  // GradScaler: inv_scale = scale.double().reciprocal().float(), grads *= inv_scale.
  const float inv = static_cast<float>(1.0 / static_cast<double>(scale_));
  std::vector<at::Tensor> bad;
  for (const at::Tensor& p : params) {
    if (!p.grad().defined()) continue;
    at::Tensor g = p.mutable_grad();
    if (enabled_) g.mul_(inv);
    bad.push_back(g.isfinite().all().logical_not());
  }
  if (bad.empty()) return false;
  return at::stack(bad).any().item<bool>();  // one device sync
}

void LossScaler::Update(bool found_inf) {
  if (!enabled_) return;
  // torch's _amp_update_scale_ (float32 arithmetic on the scale).
  if (found_inf) {
    scale_ = scale_ * static_cast<float>(options_.backoff_factor);
    growth_tracker_ = 0;
  } else if (growth_tracker_ + 1 == options_.growth_interval) {
    const float grown = scale_ * static_cast<float>(options_.growth_factor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  } else {
    ++growth_tracker_;
  }
}

std::vector<std::pair<std::string, at::Tensor>> LossScaler::StateTensors() const {
  return {{"scaler.scale", at::scalar_tensor(scale_, at::kFloat)},
          {"scaler.growth_tracker", at::scalar_tensor(growth_tracker_, at::kLong)}};
}

void LossScaler::LoadState(const at::Tensor& scale, const at::Tensor& growth_tracker, const std::string& where) {
  if (!scale.defined() || !growth_tracker.defined())
    throw FormatError("key 'scaler.scale' or 'scaler.growth_tracker' is missing", where);
  if (scale.numel() != 1 || scale.scalar_type() != at::kFloat || growth_tracker.numel() != 1 ||
      growth_tracker.scalar_type() != at::kLong)
    throw FormatError("the loss scaler's state must be a float32 scale and an int64 growth_tracker", where);
  const float s = scale.item<float>();
  const int64_t t = growth_tracker.item<int64_t>();
  if (!(s > 0) || !std::isfinite(s) || t < 0 || t >= options_.growth_interval)
    throw FormatError("the loss scaler's state is out of range", where);
  scale_ = s;
  growth_tracker_ = t;
}

Batch ToDevice(const Batch& batch, const c10::Device& device, bool pin) {
  if (device.is_cpu()) return batch;
  auto move = [&](const at::Tensor& t) {
    if (!t.defined()) return t;
    return pin ? t.pin_memory().to(device, /*non_blocking=*/true) : t.to(device);
  };
  Batch b = batch;
  for (at::Tensor* t : {&b.input_ids, &b.position_ids, &b.txt_type_ids, &b.img_feat, &b.img_pos_feat,
                        &b.img_type_ids, &b.img_masks, &b.attn_masks, &b.gather_index, &b.targets, &b.obj_masks})
    *t = move(*t);
  return b;
}

at::Tensor DeviceRngState(const c10::Device& device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state().clone();
}

void SetDeviceRngState(const c10::Device& device, const at::Tensor& state) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

}  // namespace uniter::trainer
