// Crash safety: `featdb pack` killed with SIGKILL at random moments, resumed,
// ends with a database equal to an uninterrupted run's.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "featdb/img_db.h"
#include "featdb/lmdb_env.h"
#include "featdb/npy.h"
#include "tests/featdb/featdb_test_util.h"

extern char** environ;

namespace fs = std::filesystem;

namespace uniter::featdb {
namespace {

using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::TempDir;
using ::uniter::testing::WriteFile;

void MakeInputs(const std::string& dir, int n) {
  fs::create_directories(dir);
  std::mt19937 rng(42);
  std::normal_distribution<float> g(0, 1);
  std::uniform_real_distribution<float> u(0, 1);
  for (int i = 0; i < n; ++i) {
    const int boxes = 10 + static_cast<int>(rng() % 91);
    std::vector<float> feat(boxes * 2048), bb(boxes * 6), conf(boxes), soft(boxes * 1601);
    for (float& x : feat) x = std::max(0.0f, g(rng));
    for (float& x : bb) x = u(rng);
    for (int k = 0; k < boxes; ++k) conf[k] = 1.0f - static_cast<float>(k) / static_cast<float>(boxes);
    for (float& x : soft) x = u(rng) / 1601;
    char name[64];
    std::snprintf(name, sizeof(name), "/img_%05d.npz", i);
    WriteFile(dir + name, WriteNpz({Array::FromFloat32("features", {boxes, 2048}, feat), Array::FromFloat32("norm_bb", {boxes, 6}, bb),
                                    Array::FromFloat32("conf", {boxes}, conf), Array::FromFloat32("soft_labels", {boxes, 1601}, soft)},
                                   true));
  }
}

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, args[0].c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

TEST(CrashSafety, KilledPackResumesToTheSameDatabase) {
  const std::string root = TempDir("kill");
  const std::string in = root + "/split";
  MakeInputs(in, 160);
  const std::string bin = ::uniter::testing::UniterBinary();
  const std::string db = "/split/feat_th0.2_max100_min10";
  // The uninterrupted reference.
  {
    pid_t pid = Spawn({bin, "featdb", "pack", "-q", "--commit-every", "7", in, root + "/ref"});
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  LmdbReader ref(root + "/ref" + db);
  ASSERT_EQ(ref.Count(), 161u);
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (int round = 0; round < 8; ++round) {
    pid_t pid = Spawn({bin, "featdb", "pack", "-q", "--resume", "--commit-every", "7", "--threads", "2", in, root + "/out"});
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 150));
    if (round > 0) {
      // `uniter dump` works on a db another process is writing.
      auto d = featdb::testing::RunUniter("dump --stats --json " + Quote(root + "/out" + db));
      EXPECT_EQ(d.exit_code, 0) << d.out;
      EXPECT_NE(d.out.find("\"count\""), std::string::npos) << d.out;
    }
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ++kills;  // not when pack had already finished
    if (!fs::exists(root + "/out" + db + "/data.mdb")) continue;
    // After every kill: the db opens and each committed record equals the reference.
    LmdbReader partial(root + "/out" + db);
    size_t n = 0;
    partial.ForEach([&](std::string_view k, std::string_view v) {
      if (k != "__keys__") {
        EXPECT_EQ(v, *ref.Get(k)) << "round " << round << " key " << k;
      }
      ++n;
      return true;
    });
    std::printf("round %d: killed after %zu committed records\n", round, n);
  }
  EXPECT_GE(kills, 3) << "pack finished before most kills; the test did not test much";
  pid_t pid = Spawn({bin, "featdb", "pack", "-q", "--resume", "--commit-every", "7", in, root + "/out"});
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  LmdbReader out(root + "/out" + db);
  ASSERT_EQ(out.Keys(), ref.Keys());
  for (const auto& k : ref.Keys()) EXPECT_EQ(*out.Get(k), *ref.Get(k)) << k;
  EXPECT_EQ(ReadFile(root + "/out/split/nbb_th0.2_max100_min10.json"), ReadFile(root + "/ref/split/nbb_th0.2_max100_min10.json"));
  EXPECT_FALSE(fs::exists(root + "/out/split/.feat_th0.2_max100_min10.nbb.log"));
}

}  // namespace
}  // namespace uniter::featdb
