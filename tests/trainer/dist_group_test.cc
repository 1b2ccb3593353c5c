// trainer/internal/dist_group.h: two ranks (threads of this process) over a
// c10d TCPStore + Gloo on 127.0.0.1. Gradients all-reduced in many small
// buckets of mixed dtypes equal their plain sum (or mean) computed here;
// broadcast, float64 sums and the gather of byte strings too.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <array>
#include <cstdlib>
#include <thread>

#include "common/error.h"
#include "tests/test_util.h"
#include "trainer/dist.h"
#include "trainer/internal/dist_group.h"

namespace uniter::trainer {
namespace {

// Rank r's parameters: shapes and dtypes of a model's, gradients that differ by rank.
std::vector<at::Tensor> Params(int rank) {
  std::vector<at::Tensor> params;
  const std::vector<std::vector<int64_t>> shapes = {{7, 5}, {5}, {3, 4, 2}, {1}, {11}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto dtype = i == 2 ? at::kDouble : at::kFloat;
    at::Tensor p = at::zeros(shapes[i], dtype);
    p.mutable_grad() = at::arange(p.numel(), dtype).reshape(shapes[i]).mul(rank + 1).add(0.25 * i);
    params.push_back(p);
  }
  // A gradient that is not contiguous (autograd hands out such ones).
  params[0].mutable_grad() = at::arange(35, at::kFloat).reshape({5, 7}).t().mul(rank + 2);
  return params;
}

TEST(DistGroup, TwoGlooRanksReduceBroadcastAndGather) {
  if (!DistHasGloo()) GTEST_SKIP() << "this build has no Gloo (its LibTorch ships no gloo headers)";
  const int port = ::uniter::testing::FreePorts(1);
  std::array<std::vector<at::Tensor>, 2> sum_params, mean_params;
  std::array<std::vector<double>, 2> sums;
  std::array<at::Tensor, 2> broadcast;
  std::array<std::vector<std::string>, 2> gathered;
  std::array<std::string, 2> errors;
  auto rank = [&](int r) {
    try {
      DistEnv env;
      env.rank = r;
      env.world_size = 2;
      env.master_addr = "127.0.0.1";
      env.master_port = env.store_port = port;
      auto group = DistGroup::Create(env, false, std::chrono::seconds(60));
      sum_params[r] = Params(r);
      group->AllReduceGrads(sum_params[r], /*mean=*/false, /*bucket_bytes=*/64);  // several buckets
      mean_params[r] = Params(r);
      group->AllReduceGrads(mean_params[r], /*mean=*/true);
      sums[r] = group->AllReduceSum({1.5 * (r + 1), -1.0 * r});
      broadcast[r] = at::full({4}, static_cast<float>(r + 7));
      group->Broadcast({broadcast[r]});
      gathered[r] = group->GatherToRoot(std::string(r == 0 ? 3 : 70000, static_cast<char>(r == 0 ? 'a' : '\0')));
      group->Barrier();
    } catch (const std::exception& e) {
      errors[r] = e.what();
    }
  };
  std::thread t1(rank, 1);
  rank(0);
  t1.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  const auto p0 = Params(0), p1 = Params(1);
  for (int r = 0; r < 2; ++r) {
    for (size_t i = 0; i < p0.size(); ++i) {
      const at::Tensor want = p0[i].grad() + p1[i].grad();
      EXPECT_TRUE(at::equal(sum_params[r][i].grad(), want)) << "rank " << r << " param " << i;
      EXPECT_TRUE(at::equal(mean_params[r][i].grad(), want / 2)) << "rank " << r << " param " << i;
    }
    EXPECT_EQ(sums[r], (std::vector<double>{4.5, -1.0}));
    EXPECT_TRUE(at::equal(broadcast[r], at::full({4}, 7.f)));
  }
  ASSERT_EQ(gathered[0].size(), 2u);
  EXPECT_EQ(gathered[0][0], "aaa");
  EXPECT_EQ(gathered[0][1], std::string(70000, '\0'));
  EXPECT_TRUE(gathered[1].empty());
}

// GatherToRoot in bounded chunks: 1000-byte chunks (not a multiple of a
// float's 4 bytes) carry a 70001-byte part in 71 store round trips, an empty
// part in none; rank 0 reassembles every byte in order; a chunk size from
// UNITER_GATHER_CHUNK_BYTES (the default's override) that is no number is a
// UsageError naming the variable.
TEST(DistGroup, GatherToRootInChunks) {
  if (!DistHasGloo()) GTEST_SKIP() << "this build has no Gloo (its LibTorch ships no gloo headers)";
  const int port = ::uniter::testing::FreePorts(1);
  std::string big(70001, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
  std::array<std::vector<std::vector<std::string>>, 2> gathered;
  std::array<std::string, 2> errors;
  auto rank = [&](int r) {
    try {
      DistEnv env;
      env.rank = r;
      env.world_size = 2;
      env.master_addr = "127.0.0.1";
      env.master_port = env.store_port = port;
      auto group = DistGroup::Create(env, false, std::chrono::seconds(60));
      gathered[r].push_back(group->GatherToRoot(r == 0 ? "root" : big, 1000));
      gathered[r].push_back(group->GatherToRoot(r == 0 ? big : "", 1000));
      gathered[r].push_back(group->GatherToRoot(r == 0 ? "" : big.substr(0, 2000), 1000));  // exactly 2 chunks
      group->Barrier();
    } catch (const std::exception& e) {
      errors[r] = e.what();
    }
  };
  std::thread t1(rank, 1);
  rank(0);
  t1.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  ASSERT_EQ(gathered[0].size(), 3u);
  EXPECT_EQ(gathered[0][0], (std::vector<std::string>{"root", big}));
  EXPECT_EQ(gathered[0][1], (std::vector<std::string>{big, ""}));
  EXPECT_EQ(gathered[0][2], (std::vector<std::string>{"", big.substr(0, 2000)}));
  for (const auto& g : gathered[1]) EXPECT_TRUE(g.empty());

  ASSERT_EQ(setenv("UNITER_GATHER_CHUNK_BYTES", "12x", 1), 0);
  EXPECT_THROW(
      {
        try {
          DistGroup::GatherChunkBytes();
        } catch (const UsageError& e) {
          EXPECT_NE(std::string(e.what()).find("UNITER_GATHER_CHUNK_BYTES"), std::string::npos) << e.what();
          throw;
        }
      },
      UsageError);
  ASSERT_EQ(setenv("UNITER_GATHER_CHUNK_BYTES", "4096", 1), 0);
  EXPECT_EQ(DistGroup::GatherChunkBytes(), 4096);
  unsetenv("UNITER_GATHER_CHUNK_BYTES");
  EXPECT_EQ(DistGroup::GatherChunkBytes(), int64_t{64} << 20);
}

}  // namespace
}  // namespace uniter::trainer
