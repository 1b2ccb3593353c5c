// python/uniter_featdb (the pip-installable Python reader of native img_dbs)
// against the C++ decoder: every array of every record, bit for bit, for
// lz4, zstd, mixed (auto) and uncompressed payloads, after `pip install`.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "featdb/codecs.h"
#include "featdb/img_db.h"
#include "featdb/npy.h"
#include "tests/featdb/featdb_test_util.h"

namespace uniter::featdb {
namespace {

using ::uniter::testing::Quote;

std::vector<Array> Record(int n, std::mt19937& rng) {
  std::normal_distribution<float> g(0, 1);
  std::vector<float> feat(static_cast<size_t>(n) * 2048), bb(static_cast<size_t>(n) * 6), soft(static_cast<size_t>(n) * 1601),
      conf(n);
  for (float& x : feat) x = std::round(std::max(0.0f, g(rng) - 0.4f) * 4) / 4;  // zero-mask filter, compressible
  for (float& x : bb) x = std::abs(g(rng));                   // byte shuffle
  for (float& x : soft) x = std::abs(g(rng)) / 1601;
  for (float& x : conf) x = std::abs(g(rng));
  std::string ids(static_cast<size_t>(n) * 8, '\0');
  for (char& c : ids) c = static_cast<char>(rng());
  return {ToStorageDType(Array::FromFloat32("features", {n, 2048}, feat)),
          ToStorageDType(Array::FromFloat32("norm_bb", {n, 6}, bb)),
          Array::FromFloat32("conf", {n}, conf),
          ToStorageDType(Array::FromFloat32("soft_labels", {n, 1601}, soft)),
          Array{"ids", DType::kInt64, {n}, ids},
          Array{"small", DType::kUInt8, {2}, std::string("\x07\x00", 2)}};
}

TEST(PythonReader, DecodesEveryArrayOfNativeDbsLikeTheCppDecoder) {
  FEATDB_REQUIRE_REFERENCE();
  UNITER_REQUIRE_PYTHON_MODULE("zstandard");
  UNITER_REQUIRE_PYTHON_MODULE("lz4.block");
  const std::string root = ::uniter::testing::TempDir("python_reader");
  // Installed from the repo the way a user would (no network: --no-index),
  // from a copy: setuptools writes build/ and *.egg-info beside the sources.
  const std::string site = root + "/site", src = root + "/src";
  auto r = featdb::testing::Sh("cp -r " + Quote(::uniter::testing::SourceRoot() + "/python") + " " + Quote(src) + " && " +
                               Quote(::uniter::testing::Python()) +
                               " -m pip install -q --no-deps --no-index --no-build-isolation --target " + Quote(site) +
                               " " + Quote(src) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::mt19937 rng(5);
  for (const char* compression : {"lz4", "zstd", "auto", "none"}) {
    SCOPED_TRACE(compression);
    ImgDbOptions o;
    o.codec = Codec::kNative;
    o.native_compression = compression;
    o.keep_all = true;
    const std::string split = root + "/" + compression, ref = root + "/ref_" + compression;
    ::uniter::testing::Run("mkdir -p " + Quote(ref));
    std::string db;
    bool saw_lz4 = false, saw_zstd = false;
    {
      ImgDbWriter w(split, o);
      for (int i = 0; i < 6; ++i) {
        const int n = 1 + static_cast<int>(rng() % 60);
        const std::string key = "coco_val2014_" + std::to_string(100 + i) + ".npz";
        std::string v = EncodeImgRecord(Record(n, rng), Codec::kNative, o);
        for (const std::string& d : DescribeNative(v)) {
          saw_lz4 |= d.find(":lz4") != std::string::npos;
          saw_zstd |= d.find(":zstd") != std::string::npos;
        }
        // The reference: what the C++ decoder reads back from the stored bytes.
        ::uniter::testing::WriteFile(ref + "/" + key + ".npz", WriteNpz(DecodeNative(v), false));
        w.PutEncoded(key, std::move(v), n);
      }
      w.Close();
      db = w.db_path();
    }
    const std::string c = compression;
    EXPECT_EQ(saw_lz4, c == "lz4" || c == "auto");
    EXPECT_EQ(saw_zstd, c == "zstd" || c == "auto");
    r = featdb::testing::Sh("PYTHONPATH=" + Quote(site) + " " + Quote(::uniter::testing::Python()) + " " +
                            Quote(::uniter::testing::SourceRoot() + "/tests/featdb/check_python_reader.py") + " " +
                            Quote(db) + " " + Quote(ref) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, "6 36\n");
  }
}

}  // namespace
}  // namespace uniter::featdb
