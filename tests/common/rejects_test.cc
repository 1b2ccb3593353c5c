#include "common/rejects.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace uniter {
namespace {

TEST(RejectsFile, WritesOneJsonLinePerRejectFromManyThreads) {
  const std::string dir = testing::TempDir("rejects");
  const std::string path = dir + "/rejects.jsonl";
  {
    RejectsFile rejects(path);
    EXPECT_FALSE(std::filesystem::exists(path)) << "a clean run leaves no file";
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 100; ++i) {
          Reject r{"in.json", t * 100 + i + 1, "k", "bad \"quote\"\n\xff"};
          r.key += std::to_string(i);  // (GCC 12 warns falsely about "k" + to_string)
          rejects.Add(r);
        }
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(rejects.count(), 400u);
  }
  // Read back with Python's json, an independent parser.
  auto r = testing::Run(testing::Quote(testing::Python()) +
                        " -c 'import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])];"
                        " print(len(rows), len({r[\"line\"] for r in rows}), rows[0][\"reason\"][:11])' " +
                        testing::Quote(path));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "400 400 bad \"quote\"\n");
}

}  // namespace
}  // namespace uniter
