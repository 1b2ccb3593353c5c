// The npz read path (featdb/npy.h ReadNpz, featdb/internal/zip_reader.h)
// against Python's zipfile and numpy on archives they wrote
// (tests/featdb/npz_zip_ref.py): numpy's savez/savez_compressed (zip64 local
// extra fields), data descriptors, zip64 end records and central directory
// fields, comments; every inflate backend this build has; corrupt input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/error.h"
#include "featdb/internal/zip_reader.h"
#include "featdb/npy.h"
#include "tests/featdb/featdb_test_util.h"

namespace uniter::featdb {
namespace {

using featdb::testing::Sh;
using internal::ExtractZipMember;
using internal::InflateBackend;
using internal::ListZipMembers;
using internal::ZipMember;
using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::TempDir;

std::vector<InflateBackend> Backends() {
  std::vector<InflateBackend> out;
  for (InflateBackend b : {InflateBackend::kLibdeflate, InflateBackend::kZlib})
    if (internal::HaveInflateBackend(b)) out.push_back(b);
  return out;
}

std::string Extract(const ZipMember& m, InflateBackend b) {
  std::string out(m.size, '\0');
  ExtractZipMember(m, out.data(), "test", b);
  return out;
}

// The reference archives, written once per test binary run.
class NpzReader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::uniter::testing::PythonHas("numpy")) return;
    dir_ = new std::string(TempDir("npz_reader"));
    const std::string cmd = Quote(::uniter::testing::Python()) + " " +
                            Quote(::uniter::testing::SourceRoot() + "/tests/featdb/npz_zip_ref.py") + " " + Quote(*dir_);
    ok_ = Sh(cmd + " 1>&2").exit_code == 0;
  }
  void SetUp() override {
    UNITER_REQUIRE_PYTHON_MODULE("numpy");
    ASSERT_TRUE(ok_) << "tests/featdb/npz_zip_ref.py failed";
  }
  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  static std::string* dir_;
  static bool ok_;
};
std::string* NpzReader::dir_ = nullptr;
bool NpzReader::ok_ = false;

TEST_F(NpzReader, MembersEqualPythonZipfileWithEveryInflateBackend) {
  ASSERT_FALSE(Backends().empty());
  for (const char* file : {"savez.npz", "savez_compressed.npz", "streamed.npz", "zip64.npz", "comment.npz"}) {
    const std::string zip = ReadFile(Path(file));
    const std::vector<ZipMember> members = ListZipMembers(zip, file);
    size_t refs = 0;
    for (const auto& e : std::filesystem::directory_iterator(Path(file) + ".ref"))
      refs += e.path().extension() == ".npy";
    ASSERT_EQ(members.size(), refs) << file;
    for (const ZipMember& m : members) {
      const std::string expect = ReadFile(Path(file) + ".ref/" + std::string(m.name));
      for (InflateBackend b : Backends())
        EXPECT_EQ(Extract(m, b), expect) << file << " " << m.name << " backend " << static_cast<int>(b);
    }
  }
}

TEST_F(NpzReader, ArraysEqualNumpyLoad) {
  for (const char* file : {"savez.npz", "savez_compressed.npz", "streamed.npz", "zip64.npz"}) {
    const std::vector<Array> got = ReadNpzFile(Path(file));
    std::ifstream index(Path(file) + ".ref/index.txt");
    std::string line;
    size_t n = 0;
    while (std::getline(index, line)) {
      std::istringstream ls(line);
      std::string name, descr, shape;
      ls >> name >> descr >> shape;
      ASSERT_LT(n, got.size()) << file;
      const Array& a = got[n++];  // np.load lists members in archive order too
      EXPECT_EQ(a.name, name) << file;
      EXPECT_EQ(DTypeDescr(a.dtype), descr) << file << " " << name;
      std::string ours;
      for (size_t i = 0; i < a.shape.size(); ++i) {
        if (i) ours.push_back(',');
        ours.append(std::to_string(a.shape[i]));
      }
      EXPECT_EQ(ours, shape) << file << " " << name;
      EXPECT_EQ(a.data, ReadFile(Path(file) + ".ref/" + name + ".arr")) << file << " " << name;
    }
    EXPECT_EQ(n, got.size()) << file;
    EXPECT_GE(n, 3u) << file;
  }
}

TEST_F(NpzReader, Zip64EndRecordWithManyMembers) {
  // 65540 members: zipfile wrote zip64 end records (the script checked).
  const std::vector<Array> got = ReadNpzFile(Path("many.npz"));
  ASSERT_EQ(got.size(), 65540u);
  EXPECT_EQ(got.back().name, "a65539");
  EXPECT_EQ(got.back().shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(got.back().At(2), 2);
}

TEST_F(NpzReader, OnlyDecodesTheRequestedArrays) {
  std::string zip = ReadFile(Path("savez_compressed.npz"));
  // Corrupt the `features` member's deflate stream: reading everything fails,
  // reading just norm_bb never touches it.
  const std::vector<ZipMember> members = ListZipMembers(zip, "x");
  ASSERT_EQ(members[0].name, "features.npy");
  const size_t at = static_cast<size_t>(members[0].data.data() - zip.data()) + members[0].data.size() / 2;
  zip[at] = static_cast<char>(zip[at] ^ 0x5a);
  EXPECT_THROW(ReadNpz(zip, "x"), FormatError);
  const std::vector<Array> got = ReadNpz(zip, "x", {"norm_bb"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, ReadFile(Path("savez_compressed.npz.ref/norm_bb.arr")));
  for (InflateBackend b : Backends()) EXPECT_THROW(Extract(ListZipMembers(zip, "x")[0], b), FormatError);
}

TEST_F(NpzReader, UnsupportedArchivesAreClearErrors) {
  try {
    ReadNpzFile(Path("bzip2.npz"));
    ADD_FAILURE() << "bzip2 member read";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("compression method 12"), std::string::npos) << e.what();
  }
  // Set the encryption flag in the local and central headers.
  std::string zip = ReadFile(Path("comment.npz"));
  for (const char* sig : {"PK\x03\x04", "PK\x01\x02"}) {
    const size_t p = zip.find(sig);
    ASSERT_NE(p, std::string::npos);
    zip[p + (sig[2] == 3 ? 6 : 8)] |= 1;
  }
  try {
    ReadNpz(zip, "enc.npz");
    ADD_FAILURE() << "encrypted member read";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("encrypted"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("enc.npz"), std::string::npos) << e.what();
  }
}

TEST_F(NpzReader, CorruptArchivesNeverCrash) {
  const std::string zip = ReadFile(Path("savez_compressed.npz"));
  const std::vector<Array> good = ReadNpz(zip, "x");
  // Every truncation is an error (the end record is gone or points outside).
  for (size_t n = 0; n < zip.size(); n += 97) EXPECT_THROW(ReadNpz(zip.substr(0, n), "x"), FormatError) << n;
  // A flipped byte anywhere: a FormatError, or (a byte zip does not check,
  // like a timestamp) the same arrays. Never different arrays.
  for (size_t i = 0; i < zip.size(); i += (i < 512 || i + 2048 > zip.size()) ? 1 : 61) {
    std::string bad = zip;
    bad[i] = static_cast<char>(bad[i] ^ 0x21);
    try {
      const std::vector<Array> got = ReadNpz(bad, "x");
      ASSERT_EQ(got.size(), good.size()) << i;
      for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k].data, good[k].data) << i;
    } catch (const FormatError&) {
    }
  }
}

TEST(NpzRoundTrip, OurWriterThroughEveryBackend) {
  // WriteNpz (libzip, deflate level 6 like numpy's zlib) read back by each backend.
  const Array a = Array::FromFloat32("x", {3, 4}, {0, 1, 0, 0, 2.5f, 0, 0, 0, -1, 0, 0, 7});
  for (bool compress : {true, false}) {
    const std::string zip = WriteNpz({a}, compress);
    const std::vector<ZipMember> m = ListZipMembers(zip, "w");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].method, compress ? 8 : 0);
    for (InflateBackend b : Backends()) EXPECT_EQ(Extract(m[0], b), WriteNpy(a));
    EXPECT_EQ(ReadNpz(zip).at(0), a);
  }
}

}  // namespace
}  // namespace uniter::featdb
