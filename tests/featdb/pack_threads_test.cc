// featdb::Pack runs in its own TBB arena of `threads` (no process-wide
// global_control): the db it writes is byte-identical for 1, 2 and 4 threads,
// with a bad file among the inputs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "featdb/lmdb_env.h"
#include "featdb/pack.h"
#include "tests/featdb/featdb_test_util.h"

namespace uniter::featdb {
namespace {

using featdb::testing::RunRef;
using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::TempDir;
using ::uniter::testing::WriteFile;

TEST(Pack, OutputIsIdenticalWhateverTheThreadCount) {
  FEATDB_REQUIRE_REFERENCE();
  const std::string root = TempDir("pack_threads");
  const std::string npz_dir = root + "/coco_val2014";
  RunRef("make_butd " + Quote(npz_dir) + " 40 3");  // BUTD-shaped files written by numpy
  WriteFile(npz_dir + "/coco_val2014_broken.npz", "not a zip");
  std::vector<std::vector<std::pair<std::string, std::string>>> dbs;
  std::vector<std::string> nbb_jsons;
  for (int threads : {1, 2, 4}) {
    PackOptions o;
    o.npz_dir = npz_dir;
    o.img_db_dir = root + "/out" + std::to_string(threads);
    o.threads = threads;
    o.quiet = true;
    const PackResult r = Pack(o);
    EXPECT_EQ(r.written, 40u);
    EXPECT_EQ(r.rejected, 1u);
    LmdbReader db(r.db_path);
    std::vector<std::pair<std::string, std::string>> records;
    for (const std::string& k : db.Keys()) records.emplace_back(k, *db.Get(k));
    dbs.push_back(std::move(records));
    nbb_jsons.push_back(ReadFile(o.img_db_dir + "/coco_val2014/nbb_th0.2_max100_min10.json"));
  }
  ASSERT_EQ(dbs[0].size(), 41u);  // 40 records and __keys__
  for (size_t i = 1; i < dbs.size(); ++i) {
    EXPECT_TRUE(dbs[i] == dbs[0]) << "thread count #" << i;
    EXPECT_EQ(nbb_jsons[i], nbb_jsons[0]);
  }
}

}  // namespace
}  // namespace uniter::featdb
