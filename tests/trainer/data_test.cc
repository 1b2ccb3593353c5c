// trainer/data against a Python restatement of UNITER's loaders
// (tests/trainer/uniter_data_ref.py: Python's own random, lmdb, lz4, msgpack,
// numpy and torch): generator draws, TokenBucketSampler batches, and every
// collated tensor of whole epochs, bit for bit.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <map>

#include "common/error.h"
#include "featdb/img_db.h"
#include "featdb/npy.h"
#include "featdb/txt_db.h"
#include "tests/test_util.h"
#include "trainer/data/datasets.h"
#include "trainer/data/internal/collate.h"
#include "trainer/data/internal/loader.h"
#include "trainer/data/np_random.h"
#include "trainer/data/py_random.h"
#include "trainer/data/token_bucket_sampler.h"

namespace uniter::trainer::data {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;

std::string RefScript() { return std::string(UNITER_TRAINER_TEST_DIR) + "/uniter_data_ref.py"; }

// Runs the reference script; returns its stdout.
std::string RunRef(const std::string& args) {
  const auto r = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " + Quote(RefScript()) + " " + args);
  EXPECT_EQ(r.exit_code, 0) << args;
  return r.out;
}

LoaderOptions Opts(int threads, size_t prefetch, std::shared_ptr<FeatBufferPool> pool = nullptr) {
  LoaderOptions o;
  o.num_threads = threads;
  o.prefetch = prefetch;
  o.buffers = std::move(pool);
  return o;
}

std::string WriteCase(const std::string& dir, const std::string& name, const nlohmann::json& j) {
  const std::string path = dir + "/" + name + ".json";
  ::uniter::testing::WriteFile(path, j.dump());
  return path;
}

TEST(PyRandom, DrawsWhatPythonsRandomDraws) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string dir = ::uniter::testing::TempDir("py_random");
  const std::vector<uint64_t> seeds = {0, 1, 77, 4294967301ULL, 1099511627776ULL};
  const auto ref = nlohmann::json::parse(RunRef("random " + Quote(WriteCase(dir, "r", {{"seeds", seeds}}))));
  ASSERT_EQ(ref.size(), seeds.size());
  for (size_t s = 0; s < seeds.size(); ++s) {
    PyRandom rng(seeds[s]);
    for (int k = 1; k <= 32; ++k) EXPECT_EQ(rng.GetRandBits(k), ref[s]["bits"][k - 1].get<uint32_t>()) << k;
    size_t at = 0;
    for (int n : {0, 1, 2, 3, 10, 100, 1000, 5000}) {
      std::vector<int> x(n);
      for (int i = 0; i < n; ++i) x[i] = i;
      rng.Shuffle(x);
      EXPECT_EQ(x, ref[s]["shuffles"][at++].get<std::vector<int>>()) << "seed " << seeds[s] << " n " << n;
    }
    std::vector<uint64_t> below;
    for (uint64_t n : {1ULL, 2ULL, 3ULL, 7ULL, 1000ULL, (1ULL << 31) + 11, (1ULL << 32) - 1}) below.push_back(rng.RandBelow(n));
    EXPECT_EQ(below, ref[s]["below"].get<std::vector<uint64_t>>());
  }
}

TEST(PyRandom, StateRoundTrips) {
  PyRandom a(42);
  for (int i = 0; i < 700; ++i) a.NextUint32();
  PyRandom b(7);
  b.SetState(a.GetState());
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(a.NextUint32(), b.NextUint32());
}

// numpy's legacy seeding (init_genrand, not Python's init_by_array) and its
// bounded draws (masked rejection, 32- and 64-bit ranges, spans of one).
TEST(NpRandom, DrawsWhatNumpysLegacyGeneratorDraws) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string dir = ::uniter::testing::TempDir("np_random");
  const std::vector<uint64_t> seeds = {0, 1, 24, 42, 4294967295ULL};
  const std::vector<std::pair<int64_t, int64_t>> ranges = {
      {0, 1},  {0, 2},         {0, 3},           {5, 12},          {-7, 100},       {0, 1000},
      {0, 36}, {0, 1LL << 31}, {0, (1LL << 32)}, {3, (1LL << 32) + 1}, {0, 1LL << 33}, {-(1LL << 40), 1LL << 45},
      {0, (1LL << 62) + 12345}};
  const std::vector<int64_t> choices = {1, 2, 5, 17, 100, 1LL << 35};
  nlohmann::json rj = nlohmann::json::array();
  for (const auto& [lo, hi] : ranges) rj.push_back({lo, hi});
  const auto ref = nlohmann::json::parse(
      RunRef("numpy_random " + Quote(WriteCase(dir, "n", {{"seeds", seeds}, {"ranges", rj}, {"choices", choices}}))));
  ASSERT_EQ(ref.size(), seeds.size());
  auto state = [](const PyRandom::State& s) {
    std::vector<int64_t> v(s.mt.begin(), s.mt.end());
    v.push_back(s.index);
    return v;
  };
  for (size_t s = 0; s < seeds.size(); ++s) {
    NpRandom rng(seeds[s]);
    EXPECT_EQ(state(rng.GetState()), ref[s]["state"].get<std::vector<int64_t>>()) << "seed " << seeds[s];
    for (int i = 0; i < 5; ++i) EXPECT_EQ(rng.Uniform(0, 1), ref[s]["uniform"][i].get<double>()) << i;
    EXPECT_EQ(rng.Uniform(-3.5, 2.25), ref[s]["uniform_ab"].get<double>());
    EXPECT_EQ(rng.RandomSample(), ref[s]["sample"].get<double>());
    for (size_t i = 0; i < ranges.size(); ++i)
      EXPECT_EQ(rng.RandInt(ranges[i].first, ranges[i].second), ref[s]["randint"][i].get<int64_t>())
          << "seed " << seeds[s] << " range " << i;
    for (size_t i = 0; i < choices.size(); ++i)
      EXPECT_EQ(rng.Choice(choices[i]), ref[s]["choice"][i].get<int64_t>()) << "choice " << choices[i];
    EXPECT_EQ(state(rng.GetState()), ref[s]["state_after"].get<std::vector<int64_t>>()) << "seed " << seeds[s];
  }
  EXPECT_THROW(NpRandom(1ULL << 32), UsageError);
  NpRandom r(3);
  EXPECT_THROW(r.RandInt(4, 4), UsageError);
}

TEST(TokenBucketSampler, BatchesEqualUnitersForTheSameSeed) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string dir = ::uniter::testing::TempDir("sampler");
  // More than one 8192-bucket, many equal lengths (the stable sort matters), a
  // budget that splits buckets; training (droplast) and eval.
  std::mt19937 gen(3);
  std::vector<int64_t> lens(20000);
  for (auto& l : lens) l = 20 + static_cast<int64_t>(gen() % 140);
  for (bool droplast : {true, false}) {
    for (int64_t batch_size : {2048, 10240}) {
      const nlohmann::json c = {{"lens", lens}, {"bucket_size", 8192}, {"batch_size", batch_size},
                                {"droplast", droplast}, {"seed", 77}, {"epochs", 3}};
      const auto ref = nlohmann::json::parse(RunRef("sampler " + Quote(WriteCase(dir, "s", c))));
      TokenBucketSampler sampler(lens, {8192, batch_size, droplast, 8});
      PyRandom rng(77);
      ASSERT_EQ(ref.size(), 3u);
      for (int e = 0; e < 3; ++e)
        EXPECT_EQ(sampler.Batches(rng), ref[e].get<std::vector<std::vector<int64_t>>>())
            << "epoch " << e << " droplast " << droplast << " batch_size " << batch_size;
    }
  }
  // A budget below 8 × the longest: both refuse.
  const nlohmann::json c = {{"lens", lens}, {"bucket_size", 8192}, {"batch_size", 1000}, {"droplast", true},
                            {"seed", 1}, {"epochs", 1}};
  EXPECT_TRUE(nlohmann::json::parse(RunRef("sampler " + Quote(WriteCase(dir, "s", c)))).is_null());
  PyRandom rng(1);
  EXPECT_THROW(TokenBucketSampler(lens, {8192, 1000, true, 8}).Batches(rng), UsageError);
}

TEST(TokenBucketSampler, ShardsLikeUniter) {
  EXPECT_EQ(ShardIndices(7, 1, 3), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(ShardIndices(2, 0, 1), (std::vector<int64_t>{0, 1}));
  EXPECT_THROW(ShardIndices(5, 2, 2), UsageError);
}

// ------------------------------------------------------------ batch parity

class UniterBatches : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::uniter::testing::PythonHas("msgpack_numpy") || !::uniter::testing::PythonHas("torch")) return;
    root_ = new std::string(::uniter::testing::TempDir("uniter_batches"));
    RunRef("gen " + Quote(*root_ + "/db") + " 5 24");
    MakeNativeCopy();
  }
  static void TearDownTestSuite() { delete root_; root_ = nullptr; }

  // The msgpack img_db re-encoded with our native codec beside its own nbb json.
  static void MakeNativeCopy() {
    const std::string src_dir = *root_ + "/db/img";
    const auto nbb = featdb::ReadJsonFile(src_dir + "/nbb_th0.2_max100_min10.json");
    featdb::ImgDbReader src(src_dir + "/feat_th0.2_max100_min10");
    featdb::ImgDbOptions o;
    o.codec = featdb::Codec::kNative;
    featdb::ImgDbWriter w(*root_ + "/db/img_native", o);
    for (const std::string& key : src.Keys())
      w.PutEncoded(key, featdb::EncodeImgRecord(*src.Get(key), featdb::Codec::kNative, o), nbb[key].get<int>());
    w.Close();
  }

  struct Case {
    Task task;
    std::string task_name;
    std::vector<std::string> txt_dbs;
    std::string img_db = "img";
    double conf_th = 0.2;
    bool compressed_db = false;
    bool is_train = true;
    int64_t batch_size = 2000;
    int64_t bucket_size = 24;
    int rank = 0, world = 1;
    bool use_img_type = true;
    int64_t num_answers = 3129;
    uint64_t seed = 77;
    int epochs = 2;
    std::string ref_img_db = "img";  // what Python reads (native: the msgpack source)
    int loader_threads = 0;          // > 0: batches come through PrefetchLoader with this many threads
  };

  void Check(const Case& c) {
    if (!root_) GTEST_SKIP() << "reference Python lacks msgpack_numpy or torch (run scripts/install-deps.sh)";
    std::vector<std::string> txt_paths;
    for (const auto& t : c.txt_dbs) txt_paths.push_back(*root_ + "/db/" + t);
    const nlohmann::json j = {{"task", c.task_name}, {"txt_dbs", txt_paths}, {"img_db", *root_ + "/db/" + c.ref_img_db},
                              {"conf_th", c.conf_th}, {"max_bb", 100}, {"min_bb", 10}, {"num_bb", 7},
                              {"compressed_db", c.compressed_db}, {"max_txt_len", 60}, {"is_train", c.is_train},
                              {"batch_size", c.batch_size}, {"bucket_size", c.bucket_size}, {"seed", c.seed},
                              {"epochs", c.epochs}, {"rank", c.rank}, {"world", c.world},
                              {"use_img_type", c.use_img_type}, {"num_answers", c.num_answers}};
    const std::string out = *root_ + "/ref_" + std::to_string(counter_++);
    RunRef("batches " + Quote(WriteCase(*root_, "case", j)) + " " + Quote(out));
    const auto meta = nlohmann::json::parse(::uniter::testing::ReadFile(out + ".json"));
    std::map<std::string, featdb::Array> want;
    for (auto& a : featdb::ReadNpzFile(out + ".npz")) want[a.name] = std::move(a);

    ImgDbOptions io;
    io.conf_th = c.conf_th;
    io.num_bb = 7;
    io.compressed_db = c.compressed_db;
    auto img = std::make_shared<const ImgFeatDb>(*root_ + "/db/" + c.img_db, io);
    std::vector<DbPair> dbs;
    for (const auto& t : txt_paths) dbs.push_back({std::make_shared<const TxtTokDb>(t, c.is_train ? 60 : -1), img});
    DatasetOptions o;
    o.task = c.task;
    o.use_img_type = c.use_img_type;
    o.num_answers = c.num_answers;
    o.rank = c.rank;
    o.world = c.world;
    auto ds_ptr = std::make_shared<const TaskDataset>(dbs, o);
    const TaskDataset& ds = *ds_ptr;
    EXPECT_EQ(ds.lens(), meta["lens"].get<std::vector<int64_t>>());

    TokenBucketSampler sampler(ds.lens(), {c.bucket_size, c.batch_size, c.is_train, 8});
    PyRandom rng(c.seed);
    auto pool = MakeFeatBufferPool(3);  // shared by the epochs' loaders: buffers are reused
    size_t k = 0;
    for (int e = 0; e < c.epochs; ++e) {
      const auto epoch = sampler.Batches(rng);
      std::unique_ptr<PrefetchLoader> loader;
      if (c.loader_threads > 0) loader = std::make_unique<PrefetchLoader>(ds_ptr, epoch, Opts(c.loader_threads, 2, pool));
      for (const auto& indices : epoch) {
        ASSERT_LT(k, meta["batches"].size());
        const auto& mb = meta["batches"][k];
        ASSERT_EQ(indices, mb["indices"].get<std::vector<int64_t>>()) << "batch " << k;
        Batch b;
        if (loader) {
          auto next = loader->Next();
          ASSERT_TRUE(next.has_value());
          b = std::move(*next);
        } else {
          std::vector<Example> examples;
          for (int64_t i : indices) examples.push_back(ds.Get(i));
          b = Collate(o, ds.num_answers(), examples);
        }
        EXPECT_EQ(b.qids, mb["qids"].get<std::vector<std::string>>());
        const std::pair<const char*, const at::Tensor*> fields[] = {
            {"input_ids", &b.input_ids}, {"position_ids", &b.position_ids}, {"img_feat", &b.img_feat},
            {"img_pos_feat", &b.img_pos_feat}, {"img_type_ids", &b.img_type_ids}, {"attn_masks", &b.attn_masks},
            {"gather_index", &b.gather_index}, {"targets", &b.targets}};
        for (const auto& [name, t] : fields) {
          const std::string key = "b" + std::to_string(k) + "_" + name;
          auto it = want.find(key);
          ASSERT_EQ(it != want.end(), t->defined()) << key;
          if (!t->defined()) continue;
          const featdb::Array& a = it->second;
          ASSERT_EQ(std::vector<int64_t>(t->sizes().begin(), t->sizes().end()), a.shape) << key;
          const at::Tensor ct = t->contiguous();
          ASSERT_EQ(static_cast<size_t>(ct.nbytes()), a.data.size()) << key << " dtype " << featdb::DTypeName(a.dtype);
          EXPECT_EQ(0, std::memcmp(ct.data_ptr(), a.data.data(), a.data.size())) << key;
        }
        ++k;
      }
      if (loader) {
        EXPECT_FALSE(loader->Next().has_value());
      }
    }
    EXPECT_EQ(k, meta["batches"].size());
    EXPECT_GT(k, 2u) << "a case should make several batches";
  }

  static std::string* root_;
  static int counter_;
};
std::string* UniterBatches::root_ = nullptr;
int UniterBatches::counter_ = 0;

TEST_F(UniterBatches, Nlvr2PairedTrain) { Check({Task::kNlvr2Paired, "nlvr2-paired", {"nlvr2"}}); }

TEST_F(UniterBatches, Nlvr2PairedTrainThroughLoaderOneThread) {
  Case c{Task::kNlvr2Paired, "nlvr2-paired", {"nlvr2"}};
  c.loader_threads = 1;
  Check(c);
}

TEST_F(UniterBatches, VqaTrainThroughLoaderThreeThreads) {
  Case c{Task::kVqa, "vqa", {"vqa", "ve"}};
  c.batch_size = 1100;
  c.loader_threads = 3;
  Check(c);
}

TEST_F(UniterBatches, Nlvr2PairedEvalCompressedRankOneOfTwo) {
  Case c{Task::kNlvr2Paired, "nlvr2-paired", {"nlvr2"}};
  c.compressed_db = true;
  c.is_train = false;
  c.rank = 1;
  c.world = 2;
  c.batch_size = 1900;
  c.seed = 24;
  Check(c);
}

TEST_F(UniterBatches, Nlvr2PairedNativeCodec) {
  Case c{Task::kNlvr2Paired, "nlvr2-paired", {"nlvr2"}};
  c.img_db = "img_native";
  Check(c);
}

TEST_F(UniterBatches, Nlvr2TripletTrain) { Check({Task::kNlvr2Triplet, "nlvr2-triplet", {"nlvr2"}}); }

TEST_F(UniterBatches, Nlvr2PairedWithoutImgType) {
  Case c{Task::kNlvr2Paired, "nlvr2-paired", {"nlvr2"}};
  c.use_img_type = false;
  Check(c);
}

TEST_F(UniterBatches, VqaTrainTwoDbs) {
  Case c{Task::kVqa, "vqa", {"vqa", "ve"}};
  c.batch_size = 1100;
  c.seed = 42;
  Check(c);
}

TEST_F(UniterBatches, VqaEvalNumBb) {
  Case c{Task::kVqa, "vqa", {"vqa"}};
  c.conf_th = -1;
  c.is_train = false;
  c.batch_size = 700;
  c.bucket_size = 8192;
  Check(c);
}

TEST_F(UniterBatches, VeTrain) {
  Case c{Task::kVe, "ve", {"ve"}};
  c.num_answers = 3;
  c.batch_size = 800;
  Check(c);
}

// ---------------------------------------------------------------- bad input

// The message of what `f` throws; it must be one line.
template <typename F>
std::string ErrorLine(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    return w;
  }
  ADD_FAILURE() << "no uniter::Error thrown";
  return "";
}

TEST(DataErrors, MissingDbsAndImagesAreOneClearLine) {
  const std::string dir = ::uniter::testing::TempDir("data_errors");
  std::string w = ErrorLine([&] { TxtTokDb(dir + "/no_such_db", 60); });
  EXPECT_NE(w.find(dir + "/no_such_db"), std::string::npos) << w;
  w = ErrorLine([&] { ImgFeatDb(dir + "/no_img", {}); });
  EXPECT_NE(w.find(dir + "/no_img"), std::string::npos) << w;
  fs::create_directories(dir + "/img_empty");
  w = ErrorLine([&] { ImgFeatDb(dir + "/img_empty", {}); });
  EXPECT_NE(w.find("feat_th0.2_max100_min10"), std::string::npos) << w;

  // An img_db holding one image; a txt_db whose examples need it and a ghost.
  featdb::ImgDbOptions io;
  io.min_bb = 1;
  {
    featdb::ImgDbWriter iw(dir + "/img", io);
    std::vector<float> feat(3 * 4, 0.5f), bb(3 * 6, 0.25f), conf = {0.9f, 0.8f, 0.7f};
    iw.Put("real.npz", {featdb::Array::FromFloat32("features", {3, 4}, feat),
                        featdb::Array::FromFloat32("norm_bb", {3, 6}, bb),
                        featdb::Array::FromFloat32("conf", {3}, conf)});
    iw.Close();
  }
  // The ghost is in the nbb json but not in the LMDB: only reading it can fail.
  auto nbb = featdb::ReadJsonFile(dir + "/img/nbb_th0.2_max100_min1.json");
  nbb["ghost.npz"] = 3;
  featdb::WriteJsonFile(dir + "/img/nbb_th0.2_max100_min1.json", nbb);
  {
    featdb::TxtDbWriter tw(dir + "/txt");
    for (const char* id : {"a", "b"}) {
      featdb::Value ex = featdb::Value::Map();
      ex.Set("input_ids", featdb::Value::IntList({200, 300}));
      ex.Set("img_fname", featdb::Value::Str(std::string(id) == "a" ? "real.npz" : "ghost.npz"));
      tw.Put(id, ex);
    }
    tw.WriteJson("id2len.json", {{"a", 2}, {"b", 2}});
    tw.WriteJson("txt2img.json", {{"a", "real.npz"}, {"b", "ghost.npz"}});
    tw.WriteJson("meta.json", {{"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {106, 28996}}});
    tw.Close();
  }
  ImgDbOptions o;
  o.min_bb = 1;
  auto img = std::make_shared<const ImgFeatDb>(dir + "/img", o);
  auto txt = std::make_shared<const TxtTokDb>(dir + "/txt", 60);
  DatasetOptions dopt;
  dopt.task = Task::kVqa;
  TaskDataset ds({{txt, img}}, dopt);
  EXPECT_EQ(ds.Get(0).images.at(0).nbb, 3);
  w = ErrorLine([&] { ds.Get(1); });
  EXPECT_NE(w.find("ghost.npz"), std::string::npos) << w;
  {
    // Through the loader: the first batch arrives, the ghost's batch rethrows the worker's error.
    auto shared = std::make_shared<const TaskDataset>(std::vector<DbPair>{{txt, img}}, dopt);
    PrefetchLoader loader(shared, {{0}, {1}, {0}}, Opts(2, 1));
    ASSERT_TRUE(loader.Next().has_value());
    w = ErrorLine([&] { loader.Next(); });
    EXPECT_NE(w.find("ghost.npz"), std::string::npos) << w;
  }
  {
    // Destroyed before draining: cancels without hanging.
    auto shared = std::make_shared<const TaskDataset>(std::vector<DbPair>{{txt, img}}, dopt);
    PrefetchLoader loader(shared, std::vector<std::vector<int64_t>>(50, {0}), Opts(2, 1));
    ASSERT_TRUE(loader.Next().has_value());
  }
  EXPECT_NE(w.find(dir + "/img/feat_th0.2_max100_min1"), std::string::npos) << w;
  // An image missing from the nbb json fails when the dataset is built.
  nbb.erase("ghost.npz");
  featdb::WriteJsonFile(dir + "/img/nbb_th0.2_max100_min1.json", nbb);
  auto img2 = std::make_shared<const ImgFeatDb>(dir + "/img", o);
  w = ErrorLine([&] { TaskDataset({{txt, img2}}, dopt); });
  EXPECT_NE(w.find("ghost.npz"), std::string::npos) << w;
  // Tokenizer names: the generated dbs name none (as converters for NLVR2 may); UNITER's VQA check needs one.
  w = ErrorLine([&] { CheckSameTokenizer({txt.get()}); });
  EXPECT_NE(w.find("bert"), std::string::npos) << w;
  featdb::WriteJsonFile(dir + "/txt/meta.json",
                        {{"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {106, 28996}}, {"bert", "bert-base-cased"}});
  const TxtTokDb cased(dir + "/txt", 60);
  CheckSameTokenizer({&cased, &cased});
  featdb::WriteJsonFile(dir + "/txt/meta.json",
                        {{"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {106, 28996}}, {"bert", "bert-base-uncased"}});
  const TxtTokDb uncased(dir + "/txt", 60);
  w = ErrorLine([&] { CheckSameTokenizer({&cased, &uncased}); });
  EXPECT_NE(w.find("bert-base-uncased"), std::string::npos) << w;
  // meta.json without CLS.
  featdb::WriteJsonFile(dir + "/txt/meta.json", {{"SEP", 102}});
  w = ErrorLine([&] { TxtTokDb(dir + "/txt", 60); });
  EXPECT_NE(w.find("meta.json"), std::string::npos) << w;
}

}  // namespace
}  // namespace uniter::trainer::data
