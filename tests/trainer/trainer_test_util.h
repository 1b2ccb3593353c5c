// Helpers the trainer's reference tests share.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <map>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace uniter::trainer::testing {

// tests/trainer, where the Python references live.
inline std::string TestDir() { return UNITER_TRAINER_TEST_DIR; }

// A plain {str: tensor} dict that a Python reference torch.save'd, read with
// LibTorch's own pickle loader (not our checkpoint reader, which it checks).
inline std::map<std::string, at::Tensor> LoadPlainDict(const std::string& path) {
  const std::string bytes = ::uniter::testing::ReadFile(path);
  const auto value = torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  std::map<std::string, at::Tensor> out;
  for (const auto& kv : value.toGenericDict()) out[kv.key().toStringRef()] = kv.value().toTensor();
  return out;
}

}  // namespace uniter::trainer::testing
