// txt_db against UNITER's TxtLmdb / TxtTokLmdb (tests/featdb/uniter_ref.py).
#include "featdb/txt_db.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "featdb/db_tools.h"
#include "featdb/lmdb_env.h"
#include "tests/featdb/featdb_test_util.h"

namespace uniter::featdb {
namespace {

using featdb::testing::Canon;
using featdb::testing::RunRef;
using featdb::testing::Sh;
using ::uniter::testing::Quote;
using ::uniter::testing::TempDir;

Value Example(int i) {
  Value v = Value::Map();
  std::vector<int32_t> ids;
  for (int k = 0; k < i % 40; ++k) ids.push_back(1000 + k * i);
  v.Set("input_ids", Value::IntList(ids));
  v.Set("img_fname", Value::Str("coco_val2014_" + std::to_string(i) + ".npz"));
  v.Set("target", Value::Map().Set("labels", Value::IntList({i % 3129})).Set("scores", Value::Array({Value(0.3 * i)})));
  v.Set("sentence", Value::Str("caption " + std::to_string(i) + " ünï"));
  v.Set("raw", Value::Bin(std::string("\x00\x01", 2) + std::to_string(i)));
  v.Set("nothing", Value());
  v.Set("neg", Value(-i));
  return v;
}

TEST(TxtDb, ReadsWhatUniterWrote) {
  FEATDB_REQUIRE_REFERENCE();
  const std::string dir = TempDir("txt_from_py") + "/db";
  const nlohmann::json want = nlohmann::json::parse(RunRef("txt_write " + Quote(dir)));
  TxtDbReader r(dir);
  ASSERT_EQ(r.size(), want.size());
  nlohmann::json got = nlohmann::json::object();
  for (const std::string& k : r.Keys()) got[k] = Canon(*r.Get(k));
  EXPECT_EQ(got, want);
  EXPECT_EQ(r.ReadJson("meta.json")["CLS"], 101);
  EXPECT_TRUE(r.ReadJson("txt2img.json").is_null());
  EXPECT_FALSE(r.Get("no-such-id").has_value());
}

TEST(TxtDb, UniterReadsWhatWeWrote) {
  FEATDB_REQUIRE_REFERENCE();
  const std::string dir = TempDir("txt_to_py") + "/db";
  nlohmann::json want = nlohmann::json::object(), id2len = nlohmann::json::object();
  {
    TxtDbWriterOptions o;
    o.commit_every = 7;  // several transactions
    TxtDbWriter w(dir, o);
    for (int i = 0; i < 100; ++i) {
      const std::string id = "id-" + std::to_string(i);
      const Value ex = Example(i);
      w.Put(id, ex);
      want[id] = Canon(ex);
      id2len[id] = i % 40;
    }
    w.WriteJson("meta.json", {{"UNK", 100}, {"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {106, 28996}}});
    w.WriteJson("id2len.json", id2len);
    w.Close();
    EXPECT_THROW(w.Put("x", Value()), UsageError);
  }
  const nlohmann::json got = nlohmann::json::parse(RunRef("txt_read " + Quote(dir)));
  EXPECT_EQ(got["examples"], want);
  EXPECT_EQ(got["entries"], 100);
  EXPECT_EQ(got["CLS"], 101);
  EXPECT_EQ(got["v_range"], nlohmann::json({106, 28996}));
  EXPECT_TRUE(Verify(dir).ok());
}

TEST(TxtDb, RefusesExistingDbUnlessResumeOrForce) {
  const std::string dir = TempDir("txt_exist") + "/db";
  {
    TxtDbWriter w(dir);
    w.Put("a", Example(1));
    w.Put("b", Example(2));
  }  // destructor commits
  EXPECT_THROW(TxtDbWriter w(dir), UsageError);
  {
    TxtDbWriterOptions o;
    o.resume = true;
    TxtDbWriter w(dir, o);
    EXPECT_TRUE(w.Contains("a"));
    EXPECT_FALSE(w.Contains("c"));
    w.Put("c", Example(3));
    EXPECT_TRUE(w.Contains("c"));  // pending counts
  }
  EXPECT_EQ(TxtDbReader(dir).size(), 3u);
  {
    TxtDbWriterOptions o;
    o.force = true;
    TxtDbWriter w(dir, o);
    EXPECT_FALSE(w.Contains("a"));
    w.Put("z", Example(4));
  }
  EXPECT_EQ(TxtDbReader(dir).Keys(), std::vector<std::string>{"z"});
}

TEST(TxtDb, NonLmdbFolderIsAClearError) {
  const std::string dir = TempDir("not_lmdb");
  try {
    TxtDbReader r(dir);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("not an LMDB"), std::string::npos) << e.what();
  }
  ::uniter::testing::WriteFile(dir + "/data.mdb", std::string(5000, 'x'));
  EXPECT_THROW(TxtDbReader r(dir), Error);
  EXPECT_THROW(TxtDbReader r(dir + "/missing"), IoError);
  // A corrupt value names the db and key.
  const std::string db = TempDir("corrupt_val") + "/db";
  {
    LmdbWriter w(db, 10);
    w.Put("k", "not lz4");
  }
  try {
    TxtDbReader(db).Get("k");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("[k]"), std::string::npos) << e.what();
  }
}

TEST(TxtDb, MergeVerifyAndDumpThroughTheCli) {
  const std::string root = TempDir("txt_tools");
  for (int shard = 0; shard < 2; ++shard) {
    TxtDbWriter w(root + "/shard" + std::to_string(shard));
    nlohmann::json id2len = nlohmann::json::object(), txt2img = nlohmann::json::object();
    for (int i = shard * 5; i < shard * 5 + 8; ++i) {  // ids 5..7 are in both shards
      const std::string id = "ex" + std::to_string(i);
      w.Put(id, Example(i));
      id2len[id] = i % 40;
      txt2img[id] = "coco_val2014_" + std::to_string(i) + ".npz";
    }
    w.WriteJson("meta.json", {{"UNK", 100}, {"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {106, 28996}}});
    w.WriteJson("id2len.json", id2len);
    w.WriteJson("txt2img.json", txt2img);
  }
  auto r = featdb::testing::RunUniter("featdb merge -q " + Quote(root + "/merged") + " " + Quote(root + "/shard0") + " " +
                                      Quote(root + "/shard1"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("13 records merged, 3 duplicates"), std::string::npos) << r.out;
  TxtDbReader m(root + "/merged");
  EXPECT_EQ(m.size(), 13u);
  EXPECT_EQ(m.ReadJson("id2len.json").size(), 13u);
  EXPECT_EQ(m.ReadJson("txt2img.json")["ex12"], "coco_val2014_12.npz");
  EXPECT_EQ(*m.Get("ex9"), Example(9));
  r = featdb::testing::RunUniter("featdb verify " + Quote(root + "/merged"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // A sidecar that disagrees with the db is reported.
  WriteJsonFile(root + "/merged/id2len.json", {{"ex1", 1}, {"ghost", 3}});
  r = featdb::testing::RunUniter("featdb verify " + Quote(root + "/merged"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("ghost"), std::string::npos) << r.out;
  // dump: keys, a record with tokens from a vocab, stats.
  const std::string vocab = root + "/vocab.txt";
  std::string v;
  for (int i = 0; i < 2000; ++i) v += "tok" + std::to_string(i) + "\n";
  ::uniter::testing::WriteFile(vocab, v);
  r = featdb::testing::RunUniter("dump " + Quote(root + "/merged") + " --limit 2");
  EXPECT_EQ(r.out, "ex0\nex1\n");
  r = featdb::testing::RunUniter("dump --json --vocab " + Quote(vocab) + " " + Quote(root + "/merged") + " ex3");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["value"]["input_ids"][1], 1003);
  EXPECT_EQ(j["tokens"][1], "tok1003");
  EXPECT_EQ(j["value"]["sentence"], "caption 3 ünï");
  r = featdb::testing::RunUniter("dump --stats --json " + Quote(root + "/merged"));
  const auto s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["kind"], "txt_db");
  EXPECT_EQ(s["count"], 13);
  EXPECT_EQ(s["length_histogram"]["0"], 10);  // lengths 0..9 (ex0..ex9)
  r = featdb::testing::RunUniter("dump " + Quote(root + "/merged") + " missing-id");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("no record 'missing-id'"), std::string::npos) << r.out;
}

TEST(LmdbLayer, GrowsTheMapInsteadOfFailing) {
  // 64 MiB initial map; 200 MiB of incompressible values forces several regrowths.
  const std::string dir = TempDir("grow") + "/db";
  std::string blob(1 << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& c : blob) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  {
    LmdbWriter w(dir, 1000, size_t{512} << 20);  // one big transaction: MAP_FULL mid-commit
    for (int i = 0; i < 200; ++i) {
      std::string key = "k";  // stepwise: GCC 12 warns (-Wrestrict) on "k" + to_string(i)
      key += std::to_string(i);
      w.Put(key, blob.substr(i, blob.size() - i));
    }
    w.Commit();
    EXPECT_GT(w.env().map_size(), size_t{200} << 20);
  }
  LmdbReader r(dir);
  EXPECT_EQ(r.Count(), 200u);
  EXPECT_EQ(*r.Get("k7"), blob.substr(7));
}

TEST(LmdbLayer, ReadersRunConcurrentlyWithAWriterInAnotherProcess) {
  FEATDB_REQUIRE_REFERENCE();
  // A Python writer (another process, growing the map past ours) while we read.
  const std::string dir = TempDir("concurrent") + "/db";
  {
    LmdbWriter w(dir, 1);
    w.Put("seed", "x");
  }
  const std::string py =
      "import lmdb,sys,os; env=lmdb.open(sys.argv[1], map_size=64<<20)\n"
      "for i in range(60):\n"
      "    env.set_mapsize(env.info()['map_size'] + (8<<20))\n"
      "    with env.begin(write=True) as t: t.put(b'k%03d' % i, os.urandom(1<<20))\n";
  std::atomic<bool> done{false};
  std::thread writer([&] {
    ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " -c " + Quote(py) + " " + Quote(dir));
    done = true;
  });
  LmdbReader r(dir);
  size_t last = 0, reads = 0;
  while (!done || reads < 3) {
    const size_t n = r.Count();
    EXPECT_GE(n, last);  // committed records never disappear
    last = n;
    for (const auto& k : r.Keys()) EXPECT_TRUE(r.Get(k).has_value());
    ++reads;
  }
  writer.join();
  EXPECT_EQ(r.Count(), 61u);
  EXPECT_EQ(r.Get("k059")->size(), size_t{1} << 20);
}

}  // namespace
}  // namespace uniter::featdb
