// trainer/dist.h: the env:// variables torchrun and srun set, as torch's
// env:// rendezvous reads them, and the sharding of an epoch's batches.
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>

#include "common/error.h"
#include "trainer/dist.h"

namespace uniter::trainer {
namespace {

DistEnv Read(const std::map<std::string, std::string>& vars) {
  return ReadDistEnv([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(DistEnv, NoVariablesIsOneProcess) {
  const DistEnv e = Read({});
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.launcher, "");
}

TEST(DistEnv, ReadsTorchrunsVariables) {
  const DistEnv e = Read({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                          {"MASTER_PORT", "29500"}, {"TORCHELASTIC_RUN_ID", "x"}, {"SLURM_PROCID", "0"},
                          {"SLURM_NTASKS", "8"}});
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node7");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.store_port, 29500);
  EXPECT_EQ(e.launcher, "torchrun");
}

TEST(DistEnv, FallsBackToSlurm) {
  const DistEnv e = Read({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                          {"MASTER_PORT", "1234"}});
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "127.0.0.1");
  EXPECT_EQ(e.launcher, "slurm");
}

// torchrun >= 2's agent holds MASTER_PORT with a store of the 2.x protocol:
// a LibTorch that speaks it joins that store, an older one hosts its own next to it.
TEST(DistEnv, AgentStoreAndOverride) {
  const std::map<std::string, std::string> base = {
      {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "4000"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}};
  const DistEnv e = Read(base);
  EXPECT_TRUE(e.agent_store);
  EXPECT_TRUE(e.store_port == 4000 || e.store_port == 4001) << e.store_port;
  auto with = base;
  with["UNITER_STORE_PORT"] = "5000";
  EXPECT_EQ(Read(with).store_port, 5000);
}

TEST(DistEnv, BadValuesNameTheVariable) {
  try {
    Read({{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("RANK='x'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Read({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}), UsageError);
  EXPECT_THROW(Read({{"RANK", "0"}, {"WORLD_SIZE", "2"}}), UsageError);  // no MASTER_PORT
}

TEST(ShardBatches, RankTakesEveryWthBatch) {
  const std::vector<std::vector<int64_t>> b = {{0}, {1}, {2}, {3}, {4}};
  EXPECT_EQ(ShardBatches(b, 0, 2, true), (std::vector<std::vector<int64_t>>{{0}, {2}}));
  EXPECT_EQ(ShardBatches(b, 1, 2, true), (std::vector<std::vector<int64_t>>{{1}, {3}}));
  EXPECT_EQ(ShardBatches(b, 0, 2, false), (std::vector<std::vector<int64_t>>{{0}, {2}, {4}}));
  EXPECT_EQ(ShardBatches(b, 0, 1, true), b);
  EXPECT_TRUE(ShardBatches(b, 5, 6, true).empty());
}

// An error passed on through two layers that each name the rank (the
// trainer, then the pipeline) names it once, keeping its class.
TEST(RethrowNamingRank, NamesTheRankOnce) {
  DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  auto rethrow = [&](auto&& f) {
    try {
      f();
    } catch (...) {
      RethrowNamingRank(env);
    }
  };
  try {
    rethrow([&] { rethrow([] { throw IoError("no such file", "/x/y.json"); }); });
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_EQ(e.where(), "rank 1 of 2: /x/y.json");
  }
  try {
    rethrow([&] { rethrow([] { throw std::runtime_error("closed"); }); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), "rank 1 of 2");
    EXPECT_EQ(e.message(), "closed");
  }
}

}  // namespace
}  // namespace uniter::trainer
