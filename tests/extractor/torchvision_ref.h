// Running torchvision's ops (torchvision_ref.py under Python()) as the
// reference for ops_test.cc and cuda_ops_test.cc. Header-only: the GPU
// machine's build (scripts/device) compiles the CUDA test without other files.
#pragma once

#include <torch/torch.h>

#include <fstream>
#include <string>

#include "tests/test_util.h"

namespace uniter::extractor::ops::testing {

// Writes `t` (moved to the CPU) as raw little-endian bytes.
inline void WriteRaw(const std::string& path, const at::Tensor& t) {
  const at::Tensor c = t.cpu().contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
}

// Runs torchvision_ref.py on `dir` (inputs written there with WriteRaw, the op
// in `meta`, JSON) and returns its out.bin as a flat `dtype` tensor.
inline at::Tensor TorchvisionReference(const std::string& dir, const std::string& meta, at::ScalarType dtype) {
  ::uniter::testing::WriteFile(dir + "/meta.json", meta);
  const std::string script = ::uniter::testing::SourceRoot() + "/tests/extractor/torchvision_ref.py";
  const auto r = ::uniter::testing::Run(::uniter::testing::Quote(::uniter::testing::Python()) + " " +
                                        ::uniter::testing::Quote(script) + " " + ::uniter::testing::Quote(dir) +
                                        " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  const std::string bytes = ::uniter::testing::ReadFile(dir + "/out.bin");
  const int64_t n = static_cast<int64_t>(bytes.size()) / static_cast<int64_t>(c10::elementSize(dtype));
  return torch::from_blob(const_cast<char*>(bytes.data()), {n}, dtype).clone();
}

// `k` ROIs (batch index, x1, y1, x2, y2) over `b` images of an h x w map at
// stride 16: a quarter with corners on exact half cells (rounding), a few
// beyond the map (empty bins), the rest random.
inline at::Tensor RandomRois(int64_t b, int64_t h, int64_t w, int64_t k) {
  at::Tensor corners = torch::rand({k, 4}) * torch::tensor({w * 16.f, h * 16.f, w * 16.f, h * 16.f});
  const int64_t q = k / 4, outside = k / 20;
  corners.slice(0, 0, q) = torch::floor(corners.slice(0, 0, q) / 16) * 16 + 8;
  corners.slice(0, q, q + outside) = corners.slice(0, q, q + outside) + 700;
  const at::Tensor x = torch::stack({torch::min(corners.select(1, 0), corners.select(1, 2)),
                                     torch::min(corners.select(1, 1), corners.select(1, 3)),
                                     torch::max(corners.select(1, 0), corners.select(1, 2)),
                                     torch::max(corners.select(1, 1), corners.select(1, 3))},
                                    1);
  return torch::cat({torch::randint(0, b, {k, 1}).to(torch::kFloat), x}, 1).contiguous();
}

}  // namespace uniter::extractor::ops::testing
