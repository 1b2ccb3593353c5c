// A truly full disk: a 4 MiB tmpfs filled by a txt_db writer. The writer must
// fail with one clear "disk full" error, and every record committed before it
// must still be there for an independent reader (python3-lmdb).
#include <sys/mount.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "common/error.h"
#include "featdb/txt_db.h"
#include "featdb/value.h"
#include "tests/test_util.h"

namespace uniter::featdb {
namespace {

namespace fs = std::filesystem;

// Mounts a small tmpfs for the test's life; skips when this process may not
// mount (not root, or a container without CAP_SYS_ADMIN).
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& dir) : dir_(dir) {
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=4m") == 0) mounted_ = true;
    else reason_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string reason_;
};

TEST(DiskFull, WriterSaysDiskFullAndKeepsEveryCommittedRecord) {
  const std::string mnt = ::uniter::testing::TempDir("disk_full");
  SmallDisk disk(mnt);
  UNITER_REQUIRE_REFERENCE(disk.mounted()) << "cannot mount a 4 MiB tmpfs to fill (" << disk.reason() << ")";
  const std::string db = mnt + "/full.db";

  // Incompressible 64 KiB records: lz4 cannot shrink them, so ~60 fill the disk.
  std::mt19937_64 rng(7);
  std::string error;
  int committed = 0;
  {
    TxtDbWriter w(db, {.commit_every = 1});
    for (int i = 0; i < 1000; ++i) {
      std::string blob(64 * 1024, '\0');
      for (char& c : blob) c = static_cast<char>(rng());
      try {
        w.Put("rec" + std::to_string(i), Value::Map().Set("blob", Value::Bin(blob)).Set("i", Value(i)));
        w.Commit();
        committed = i + 1;
      } catch (const IoError& e) {
        error = e.what();
        break;
      }
    }
    try {
      w.Close();  // the failed batch may fail again; it must not take committed data along
    } catch (const Error&) {
    }
  }
  ASSERT_FALSE(error.empty()) << "4 MiB never filled up";
  EXPECT_NE(error.find("disk full"), std::string::npos) << error;
  EXPECT_NE(error.find(db), std::string::npos) << "the error names the db: " << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << "one line: " << error;
  ASSERT_GT(committed, 10);

  // An independent reader sees every committed record, each with its own index.
  const std::string script =
      "import lmdb,lz4.frame,msgpack,sys\n"
      "env=lmdb.open(sys.argv[1],readonly=True,create=False,lock=False)\n"
      "n=int(sys.argv[2]);bad=0\n"
      "with env.begin() as t:\n"
      "  for i in range(n):\n"
      "    v=t.get(('rec%d'%i).encode())\n"
      "    d=msgpack.loads(lz4.frame.decompress(v),raw=False) if v else None\n"
      "    bad+= d is None or d['i']!=i or len(d['blob'])!=65536\n"
      "print(bad)\n";
  const auto r = ::uniter::testing::Run(::uniter::testing::Quote(::uniter::testing::Python()) + " -c " +
                                        ::uniter::testing::Quote(script) + " " + ::uniter::testing::Quote(db) +
                                        " " + std::to_string(committed));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "0\n") << "committed records lost or damaged";
}

}  // namespace
}  // namespace uniter::featdb
