// Where and in which precision the trainer runs: the device (--device
// auto|cpu|cuda[:N]), autocast (UNITER's `fp16` = apex O2, done here as fp16
// autocast on CUDA with fp32 weights; `amp_dtype bf16` = bf16 autocast, CPU or
// CUDA), the dynamic loss scaler fp16 needs, and moving batches to the device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/internal/batch.h"

namespace uniter::trainer {

// "cpu", "cuda", "cuda:N" or "auto". auto: CUDA when LibTorch has it and a GPU
// is present, else the CPU. "cuda" and auto pick GPU LOCAL_RANK when torchrun
// set it (else 0). UsageError on a malformed spec, or CUDA asked for where
// LibTorch has none or the GPU index is past the GPUs present.
c10::Device ResolveDevice(const std::string& spec);

enum class AmpMode { kFp32, kFp16, kBf16 };

struct Precision {
  AmpMode mode = AmpMode::kFp32;
  // Set when an option was downgraded (fp16 on the CPU runs fp32): printed
  // once, after the caller's "train: " / "infer: ".
  std::string notice;
};

// UNITER's `fp16` and our `amp_dtype` ("" | "fp32" | "fp16" | "bf16"; it wins
// over fp16) on `device`. fp16 needs CUDA: on the CPU it runs fp32 with a
// notice (every UNITER config sets fp16). UsageError on an unknown amp_dtype.
Precision ResolvePrecision(bool fp16, const std::string& amp_dtype, const c10::Device& device);

// "fp32", "fp16", "bf16".
const char* AmpModeName(AmpMode mode);

// Where `uniter infer`'s forwards run: the device and the autocast mode.
struct InferPlacement {
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  AmpMode amp = AmpMode::kFp32;
  std::string notice;  // ResolvePrecision's
};

// `device`, `fp16` and `amp_dtype` resolved as training resolves them
// (ResolveDevice, ResolvePrecision): UsageError before anything is read.
InferPlacement ResolveInferPlacement(const std::string& device, bool fp16, const std::string& amp_dtype);

// Once the inputs checked out (a bad one stays a one-line error), on stderr
// unless `quiet`: the precision's notice and, off the CPU or under autocast,
// "infer: on DEV, MODE".
void AnnounceInferPlacement(const InferPlacement& place, bool quiet);

// A forward's scores as contiguous fp32 on the CPU: what results files,
// metrics and --save-logits are written from, whatever the device and autocast.
at::Tensor ToCpuFloat(const at::Tensor& scores);

// Autocast to fp16/bf16 for `device`'s type while alive (torch.autocast):
// nothing for kFp32. Restores the previous state; the outermost guard clears
// autocast's weight-cast cache on exit, as Python's does.
class AutocastGuard {
 public:
  AutocastGuard(AmpMode mode, const c10::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::ScalarType::Float;
};

// torch.amp.GradScaler's (and apex's dynamic) loss scaling: the loss is
// multiplied by `scale` before backward; at the update the grads are divided
// by it and checked. A non-finite grad skips the optimizer step and multiplies
// the scale by backoff_factor; growth_interval finite updates in a row
// multiply it by growth_factor. The scale lives in float32 as torch's does.
struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16, torch's and apex's default
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(bool enabled, const LossScalerOptions& options = {});

  bool enabled() const { return enabled_; }
  float scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }

  // loss × scale (the loss itself when disabled).
  at::Tensor Scale(const at::Tensor& loss) const;
  // Divides every defined grad by the scale in place (torch multiplies by the
  // float32 reciprocal; so do we) and returns true when any is inf or nan.
  // Disabled: only the check.
  bool UnscaleAndCheck(const std::vector<at::Tensor>& params) const;
  // GradScaler.update(): backoff on `found_inf`, else count towards growth.
  void Update(bool found_inf);

  // "scaler.scale" (float32 0-d), "scaler.growth_tracker" (int64 0-d).
  std::vector<std::pair<std::string, at::Tensor>> StateTensors() const;
  // Restores them from entries named as above without the "scaler." prefix
  // ("scale", "growth_tracker"); FormatError naming `where` when one is
  // missing or malformed.
  void LoadState(const at::Tensor& scale, const at::Tensor& growth_tracker, const std::string& where);

 private:
  bool enabled_;
  LossScalerOptions options_;
  float scale_;
  int64_t growth_tracker_ = 0;
};

// A copy of `batch` with every tensor on `device` (the batch itself when that
// is the CPU). pin: through pinned host memory with non_blocking copies
// (DataLoader(pin_memory=True) + .cuda(non_blocking=True)).
Batch ToDevice(const Batch& batch, const c10::Device& device, bool pin);

// The default generator of `device` (CPU or CUDA): its state and its restore,
// so that dropout on that device resumes where it stopped.
at::Tensor DeviceRngState(const c10::Device& device);
void SetDeviceRngState(const c10::Device& device, const at::Tensor& state);

}  // namespace uniter::trainer
