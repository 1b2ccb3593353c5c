// BatchDumper as numpy reads it back: every dtype (int64, float32, bool,
// uint8, float16; bf16 widened to float32), shapes (0-d included), values,
// the 0-d float32 `loss`, names that sort in order, the limit; and a
// pretraining batch under UNITER's keys (ot_inputs.* flattened).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "common/error.h"
#include "tests/test_util.h"
#include "trainer/internal/batch_dump.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;

// numpy's view of one .npz: {name: {"dtype", "shape", "values" (flat list)}}.
nlohmann::json NumpyView(const std::string& path) {
  const std::string code =
      "import json, sys, numpy as np\n"
      "z = np.load(sys.argv[1])\n"
      "print(json.dumps({k: {'dtype': str(z[k].dtype), 'shape': list(z[k].shape),\n"
      "                      'values': z[k].astype(np.float64).ravel().tolist()} for k in z.files}))\n";
  const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " -c " + Quote(code) + " " +
                                        Quote(path) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out);
}

TEST(BatchDumper, NumpyReadsEveryDtypeAndTheLossAndTheLimitHolds) {
  UNITER_REQUIRE_PYTHON_MODULE("numpy");
  const std::string dir = ::uniter::testing::TempDir("batch_dump") + "/out";
  BatchDumper d(dir, 2);
  ASSERT_TRUE(d.Wants());
  EXPECT_EQ(d.NextStem(), "batch_000000");
  const NamedArrays arrays = {
      {"i64", at::arange(6, at::kLong).view({2, 3}) - 2},
      {"f32", at::tensor({1.5f, -0.25f, 3e-8f})},
      {"b", at::tensor({1, 0, 1}, at::kInt).to(at::kBool)},
      {"u8", at::tensor({0, 255, 7}, at::kByte)},
      {"f16", at::tensor({0.5f, -2.0f}).to(at::kHalf)},
      {"bf16", at::tensor({1.0f, 0.375f}).to(at::kBFloat16)},
      {"scalar", at::scalar_tensor(17, at::kLong)},
      {"strided", at::arange(6, at::kFloat).view({2, 3}).t()},  // a non-contiguous view
      {"undefined", at::Tensor()}};
  d.Dump(d.NextStem(), arrays, 0.123456789);
  d.Dump(d.NextStem("x_", 3), {{"a", at::ones({1})}}, -1);
  EXPECT_FALSE(d.Wants());
  EXPECT_EQ(d.written(), 2);
  EXPECT_TRUE(std::filesystem::exists(dir + "/x_001.npz"));

  const auto z = NumpyView(dir + "/batch_000000.npz");
  auto expect = [&](const char* name, const char* dtype, std::vector<int64_t> shape, std::vector<double> values) {
    ASSERT_TRUE(z.contains(name)) << z.dump();
    EXPECT_EQ(z[name]["dtype"], dtype) << name;
    EXPECT_EQ(z[name]["shape"].get<std::vector<int64_t>>(), shape) << name;
    EXPECT_EQ(z[name]["values"].get<std::vector<double>>(), values) << name;
  };
  expect("i64", "int64", {2, 3}, {-2, -1, 0, 1, 2, 3});
  expect("f32", "float32", {3}, {1.5, -0.25, static_cast<double>(3e-8f)});
  expect("b", "bool", {3}, {1, 0, 1});
  expect("u8", "uint8", {3}, {0, 255, 7});
  expect("f16", "float16", {2}, {0.5, -2.0});
  expect("bf16", "float32", {2}, {1.0, 0.375});
  expect("scalar", "int64", {}, {17});
  expect("strided", "float32", {3, 2}, {0, 3, 1, 4, 2, 5});
  expect("loss", "float32", {}, {static_cast<double>(0.123456789f)});
  EXPECT_FALSE(z.contains("undefined"));
  EXPECT_EQ(z.size(), 9u);

  BatchDumper twice(dir, 5);
  EXPECT_THROW(twice.Dump("t", {{"a", at::ones({1})}, {"a", at::ones({1})}}, 0), UsageError);
  EXPECT_THROW(twice.Dump("t", {{"loss", at::ones({1})}}, 0), UsageError);
  EXPECT_THROW(twice.Dump("t", {{"c", at::ones({1}, at::kComplexFloat)}}, 0), UsageError);
}

// data/itm.py itm_ot_collate + mlm/mrm keys: PretrainBatchArrays names what
// is defined, OT inputs as ot_inputs.<key> with scatter_max a 0-d int64.
TEST(BatchDumper, PretrainBatchUnderUnitersKeys) {
  PretrainBatch p;
  Batch& b = p.batch;
  b.input_ids = at::ones({2, 4}, at::kLong);
  b.position_ids = at::arange(4, at::kLong).unsqueeze(0);
  b.img_feat = at::zeros({2, 3, 8});
  b.img_pos_feat = at::zeros({2, 3, 7});
  b.attn_masks = at::ones({2, 7}, at::kLong);
  b.gather_index = at::arange(7, at::kLong).repeat({2, 1});
  b.targets = at::tensor({1, 0}, at::kLong);
  p.ot_scatter = at::zeros({2, 7}, at::kLong);
  p.scatter_max = 5;
  p.txt_pad = at::zeros({2, 4}, at::kBool);
  p.img_pad = at::zeros({2, 3}, at::kBool);
  std::vector<std::string> keys;
  for (const auto& [k, t] : PretrainBatchArrays(p)) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"input_ids", "position_ids", "img_feat", "img_pos_feat", "attn_masks",
                                            "gather_index", "targets", "ot_inputs.ot_scatter",
                                            "ot_inputs.scatter_max", "ot_inputs.txt_pad", "ot_inputs.img_pad"}));
  p.ot_scatter = at::Tensor();
  b.targets = at::Tensor();
  p.txt_labels = at::full({2, 4}, -1, at::kLong);
  keys.clear();
  for (const auto& [k, t] : PretrainBatchArrays(p)) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"input_ids", "position_ids", "img_feat", "img_pos_feat", "attn_masks",
                                            "gather_index", "txt_labels"}));
}

}  // namespace
}  // namespace uniter::trainer
