// img_db's `__keys__` and nbb json for keys json.dumps escapes (every C0
// control, DEL, non-BMP, quotes), against Python's json.dumps of the same LMDB
// keys; keys that are not UTF-8 are refused with one clear error.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "featdb/img_db.h"
#include "tests/featdb/featdb_test_util.h"

namespace uniter::featdb {
namespace {

using ::uniter::testing::Quote;

TEST(ImgDbKeys, KeysAndNbbJsonAreWhatJsonDumpsWrites) {
  FEATDB_REQUIRE_REFERENCE();
  std::vector<std::string> keys = {"del\x7f.npz", "emoji \xf0\x9f\x98\x80.npz", "caf\xc3\xa9.npz",
                                   "q\"b\\.npz"};
  for (int c = 1; c < 0x20; ++c) {
    std::string k = "c";
    k.push_back(static_cast<char>(c));
    keys.push_back(k + ".npz");
  }
  const std::string root = ::uniter::testing::TempDir("keys_json");
  ImgDbOptions o;
  o.codec = Codec::kMsgpack;
  std::string db;
  {
    ImgDbWriter w(root + "/split", o);
    int nbb = 10;
    for (const std::string& k : keys) {
      std::vector<Array> rec = {Array::FromFloat32("conf", {1}, {0.5f})};
      w.PutEncoded(k, EncodeImgRecord(rec, o.codec, o), nbb++);
    }
    // UNITER reads records by fname.encode('utf-8'): a non-UTF-8 key is refused, named.
    try {
      w.PutEncoded("bad \xff.npz", EncodeImgRecord({Array::FromFloat32("conf", {1}, {0.5f})}, o.codec, o), 1);
      ADD_FAILURE() << "a key that is not UTF-8 was stored";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("[\"bad \\udcff.npz\"]"), std::string::npos) << e.what();
    }
    w.Close();
    db = w.db_path();
  }
  const std::string py =
      "import json, lmdb, os, sys\n"
      "env = lmdb.open(sys.argv[1], readonly=True, lock=False)\n"
      "with env.begin() as t:\n"
      "  raw = [k for k, _ in t.cursor() if k != b'__keys__']\n"
      "  stored = t.get(b'__keys__')\n"
      "keys = [k.decode('utf-8') for k in raw]\n"
      "assert stored == json.dumps(keys).encode(), (stored, json.dumps(keys))\n"
      "nbb = [f for f in os.listdir(sys.argv[2]) if f.startswith('nbb')]\n"
      "text = open(os.path.join(sys.argv[2], nbb[0]), 'rb').read()\n"
      "d = json.loads(text)\n"
      "assert text == json.dumps(d).encode() and list(d) == keys, text\n"
      "assert [k.encode('utf-8') for k in json.loads(stored)] == raw\n"
      "print(len(keys))\n";
  const auto r = featdb::testing::Sh(Quote(::uniter::testing::Python()) + " -c " + Quote(py) + " " + Quote(db) + " " +
                                     Quote(root + "/split") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, std::to_string(keys.size()) + "\n");
}

}  // namespace
}  // namespace uniter::featdb
