// Shards and devices from flags and from torchrun / SLURM variables
// (extractor/launch.h).
#include "extractor/launch.h"

#include <cstdlib>

#include "common/error.h"
#include "tests/test_util.h"

namespace uniter::extractor {
namespace {

// Sets launcher variables for one test and clears them after.
class LaunchEnv : public ::testing::Test {
 protected:
  void SetUp() override { Clear(); }
  void TearDown() override { Clear(); }
  static void Clear() {
    for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"})
      ::unsetenv(v);
  }
};

TEST_F(LaunchEnv, ShardFromFlagThenTorchrunThenSlurm) {
  Shard s = ResolveShard("auto");
  EXPECT_EQ(s.index, 0);
  EXPECT_EQ(s.count, 1);
  ::setenv("SLURM_PROCID", "3", 1);
  ::setenv("SLURM_NTASKS", "4", 1);
  s = ResolveShard("");
  EXPECT_EQ(s.index, 3);
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.source, "SLURM");
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "8", 1);
  s = ResolveShard("auto");  // torchrun wins over an outer SLURM allocation
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.count, 8);
  EXPECT_EQ(s.source, "torchrun");
  s = ResolveShard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  for (const char* bad : {"5/5", "1", "-1/2", "a/b", "1/0", "1/2x"}) EXPECT_THROW(ResolveShard(bad), UsageError) << bad;
  ::setenv("RANK", "9", 1);
  EXPECT_THROW(ResolveShard("auto"), UsageError);  // RANK >= WORLD_SIZE
}

TEST_F(LaunchEnv, CudaWithoutIndexIsTheLocalRank) {
  EXPECT_EQ(ResolveDevices("cuda"), std::vector<std::string>{"cuda:0"});
  ::setenv("SLURM_LOCALID", "2", 1);
  EXPECT_EQ(ResolveDevices("cuda"), std::vector<std::string>{"cuda:2"});
  ::setenv("LOCAL_RANK", "1", 1);
  EXPECT_EQ(ResolveDevices("cuda"), std::vector<std::string>{"cuda:1"});
  EXPECT_EQ(ResolveDevices("cuda:0,cuda:3"), (std::vector<std::string>{"cuda:0", "cuda:3"}));
  EXPECT_EQ(ResolveDevices("cpu,cpu"), (std::vector<std::string>{"cpu", "cpu"}));
  for (const char* bad : {"", "gpu", "cuda:", "cuda:x", "cuda:0,cuda:0", "cpu,"})
    EXPECT_THROW(ResolveDevices(bad), UsageError) << bad;
  EXPECT_NO_THROW(CheckDevice("cpu"));
}

}  // namespace
}  // namespace uniter::extractor
