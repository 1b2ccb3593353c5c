// common/progress.h: the OnAdd observer (what `uniter pipeline run`'s board
// shows for extraction) sees every Add, with the running count and the total,
// from whichever thread adds, quiet or not.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/progress.h"

namespace uniter {
namespace {

TEST(Progress, ObserverSeesEveryCountFromEveryThread) {
  Progress progress("test", 4000, /*quiet=*/true);
  std::mutex mu;
  std::set<uint64_t> seen;
  std::atomic<int> calls{0};
  progress.OnAdd([&](uint64_t count, uint64_t total) {
    EXPECT_EQ(total, 4000u);
    ++calls;
    std::lock_guard lock(mu);
    seen.insert(count);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) progress.Add();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 4000);
  // Each Add reports the count it made: 1..4000, each once.
  ASSERT_EQ(seen.size(), 4000u);
  EXPECT_EQ(*seen.begin(), 1u);
  EXPECT_EQ(*seen.rbegin(), 4000u);
  progress.Add(5);
  EXPECT_EQ(progress.count(), 4005u);
  EXPECT_TRUE(seen.count(4005));
}

}  // namespace
}  // namespace uniter
