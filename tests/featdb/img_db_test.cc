// img_db, npy/npz and the native codec against numpy, msgpack-numpy and
// UNITER's convert_imgdir.py / DetectFeatLmdb (tests/featdb/uniter_ref.py).
#include "featdb/img_db.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <random>

#include "common/error.h"
#include "featdb/codecs.h"
#include "featdb/db_tools.h"
#include "featdb/lmdb_env.h"
#include "featdb/npy.h"
#include "featdb/pack.h"
#include "tests/featdb/featdb_test_util.h"

namespace fs = std::filesystem;

namespace uniter::featdb {
namespace {

using featdb::testing::RunRef;
using featdb::testing::Sh;
using featdb::testing::RunUniter;
using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::TempDir;
using ::uniter::testing::WriteFile;

std::vector<Array> RandomRecord(int n, uint32_t seed, bool fp32 = false) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> feat(n * 2048), bb(n * 6), conf(n), soft(n * 1601);
  for (float& x : feat) x = std::max(0.0f, g(rng)) * 2;
  for (int i = 0; i < n; ++i) {
    const float x1 = u(rng) * .5f, y1 = u(rng) * .5f, w = u(rng) * .5f, h = u(rng) * .5f;
    float* b = &bb[i * 6];
    b[0] = x1, b[1] = y1, b[2] = x1 + w, b[3] = y1 + h, b[4] = w, b[5] = h;
    conf[i] = 1.0f - static_cast<float>(i) / static_cast<float>(n);
  }
  for (float& x : soft) x = u(rng) / 1601;
  std::vector<Array> out = {Array::FromFloat32("features", {n, 2048}, feat), Array::FromFloat32("norm_bb", {n, 6}, bb),
                            Array::FromFloat32("conf", {n}, conf), Array::FromFloat32("soft_labels", {n, 1601}, soft)};
  if (!fp32)
    for (Array& a : out) a = ToStorageDType(a);
  return out;
}

TEST(Npy, ReadsNumpyAndNumpyReadsOurs) {
  FEATDB_REQUIRE_REFERENCE();
  const std::string dir = TempDir("npz");
  // numpy writes every dtype, 0-d, 1-d, 3-d, empty, compressed and not.
  const std::string py =
      "import numpy as np,sys; d=sys.argv[1]; r=np.random.RandomState(0)\n"
      "a=dict(f2=r.randn(3,5).astype(np.float16), f4=r.randn(7).astype(np.float32), f8=r.randn(2,2,2),\n"
      "  i1=np.arange(-5,5,dtype=np.int8), i2=np.arange(6,dtype=np.int16).reshape(2,3), i4=np.array([1,-2],np.int32),\n"
      "  i8=np.array([2**40],np.int64), u1=np.arange(3,dtype=np.uint8), u2=np.array([65535],np.uint16),\n"
      "  u4=np.array([7],np.uint32), u8=np.array([2**63],np.uint64), b=np.array([True,False]), z=np.array(3.5),\n"
      "  e=np.zeros((0,4),np.float32))\n"
      "np.savez_compressed(d+'/c.npz', **a, allow_pickle=True); np.savez(d+'/s.npz', **a)\n"
      "np.save(d+'/v2.npy', a['f4'])\n";
  ASSERT_EQ(Sh(Quote(::uniter::testing::Python()) + " -c " + Quote(py) + " " + Quote(dir)).exit_code, 0);
  const auto c = ReadNpzFile(dir + "/c.npz");
  const auto s = ReadNpzFile(dir + "/s.npz");
  ASSERT_EQ(c.size(), 15u);  // + the stray allow_pickle
  ASSERT_EQ(s.size(), 14u);
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(c[i], s[i]) << s[i].name;
  EXPECT_EQ(FindArray(s, "f2")->shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(FindArray(s, "f8")->dtype, DType::kFloat64);
  EXPECT_EQ(FindArray(s, "z")->shape.size(), 0u);
  EXPECT_EQ(FindArray(s, "z")->At(0), 3.5);
  EXPECT_EQ(FindArray(s, "u8")->At(0), 9223372036854775808.0);
  EXPECT_EQ(FindArray(s, "i1")->At(0), -5);
  EXPECT_EQ(FindArray(c, "allow_pickle")->dtype, DType::kBool);
  EXPECT_EQ(FindArray(s, "e")->shape, (std::vector<int64_t>{0, 4}));
  // `only` skips the rest.
  EXPECT_EQ(ReadNpz(ReadFile(dir + "/c.npz"), "", {"i8"}).size(), 1u);
  // Our npz (both variants) read by numpy gives identical arrays.
  WriteFile(dir + "/ours_c.npz", WriteNpz(s, true));
  WriteFile(dir + "/ours_s.npz", WriteNpz(s, false));
  const std::string check =
      "import numpy as np,sys; d=sys.argv[1]; ref=np.load(d+'/s.npz')\n"
      "for f in ('ours_c.npz','ours_s.npz'):\n"
      "    o=np.load(d+'/'+f)\n"
      "    assert o.files==ref.files, (o.files, ref.files)\n"
      "    for k in ref.files: assert o[k].dtype==ref[k].dtype and o[k].shape==ref[k].shape and o[k].tobytes()==ref[k].tobytes(), k\n";
  EXPECT_EQ(Sh(Quote(::uniter::testing::Python()) + " -c " + Quote(check) + " " + Quote(dir)).exit_code, 0);
}

TEST(Npy, BadInputIsAClearError) {
  Array a = Array::FromFloat32("x", {2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string npy = WriteNpy(a);
  EXPECT_EQ(ParseNpy(npy, "x"), a);
  for (size_t n = 0; n < npy.size(); ++n) EXPECT_THROW(ParseNpy(npy.substr(0, n), "x"), FormatError) << n;
  auto with_header = [&](const std::string& h) {
    std::string s("\x93NUMPY\x01\x00", 8);
    s.push_back(static_cast<char>(h.size()));
    s.push_back(0);
    return s + h + std::string(24, '\0');
  };
  EXPECT_NO_THROW(ParseNpy(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "x"));
  EXPECT_THROW(ParseNpy(with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }"), "x"), FormatError);
  EXPECT_THROW(ParseNpy(with_header("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }"), "x"), FormatError);
  EXPECT_THROW(ParseNpy(with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"), "x"), FormatError);
  EXPECT_THROW(ParseNpy(with_header("{'descr': '<f4', 'shape': (2, 3), }"), "x"), FormatError);
  EXPECT_THROW(ParseNpy(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"), "x"), FormatError);
  EXPECT_THROW(ParseNpy(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}"), "x"), FormatError);
  const std::string npz = WriteNpz({a}, true);
  for (size_t n = 0; n < npz.size(); n += 7) EXPECT_THROW(ReadNpz(npz.substr(0, n), "f.npz"), FormatError) << n;
  // A flipped byte in the deflated data fails the zip CRC (or inflate).
  std::string flipped = WriteNpz({Array::FromFloat32("y", {64}, std::vector<float>(64, 1.5f))}, true);
  flipped[flipped.size() / 3] ^= 0x40;
  EXPECT_THROW(ReadNpz(flipped, "f.npz"), FormatError);
}

TEST(MsgpackNumpy, ByteIdenticalToMsgpackNumpy) {
  FEATDB_REQUIRE_REFERENCE();
  const std::string dir = TempDir("mpn");
  std::vector<Array> rec = RandomRecord(5, 1);
  rec.push_back(Array{"ints", DType::kInt64, {3}, std::string(24, '\x01')});
  WriteFile(dir + "/r.npz", WriteNpz(rec, false));
  const std::string hex = RunRef("msgpack_bytes " + Quote(dir + "/r.npz"));
  std::string ours;
  for (unsigned char c : EncodeMsgpackNumpy(rec)) {
    char b[3];
    std::snprintf(b, 3, "%02x", c);
    ours += b;
  }
  EXPECT_EQ(ours + "\n", hex);
  EXPECT_EQ(DecodeMsgpackNumpy(EncodeMsgpackNumpy(rec)), rec);
}

TEST(NativeCodec, RoundTripsDetectsEveryFlippedByteAndMatchesItsProto) {
  std::vector<Array> rec = RandomRecord(36, 2);
  rec.push_back(Array{"ids", DType::kInt32, {2}, std::string("\x01\x00\x00\x00\x02\x00\x00\x00", 8)});
  for (const char* c : {"lz4", "zstd", "none"}) {
    NativeOptions o;
    o.compression = c;
    const std::string v = EncodeNative(rec, o);
    EXPECT_EQ(DecodeNative(v), rec) << c;
    EXPECT_EQ(DecodeImgRecord(v), rec) << c;
    EXPECT_EQ(DecodeNative(v, {"conf"}).size(), 1u);
  }
  const std::string v = EncodeNative(RandomRecord(4, 3));
  for (size_t i = 0; i < v.size(); ++i) {
    std::string bad = v;
    bad[i] ^= 0x01;
    EXPECT_THROW(DecodeImgRecord(bad), FormatError) << "byte " << i;
  }
  for (size_t n = 0; n < v.size(); n += 3) EXPECT_THROW(DecodeNative(v.substr(0, n)), FormatError);
  // Independent check of the wire format: protoc decodes the record with our .proto.
  UNITER_REQUIRE_REFERENCE(Sh("command -v protoc >/dev/null").exit_code == 0) << "protoc not installed (protobuf-compiler)";
  const std::string dir = TempDir("protoc");
  WriteFile(dir + "/env.bin", EncodeNative(RandomRecord(36, 3)));
  const std::string proto_dir = ::uniter::testing::SourceRoot() + "/featdb";
  auto r = Sh("protoc -I" + Quote(proto_dir) + " --decode=uniter.featdb.proto.NativeEnvelope native_record.proto < " +
               Quote(dir + "/env.bin"));
  ASSERT_EQ(r.exit_code, 0) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("magic: 827477589"), std::string::npos) << r.out.substr(0, 2000);  // 0x31524e55
  // Decode the inner NativeRecord too: names, dtype, shape, sizes.
  const std::string py =
      "import sys,subprocess; b=open(sys.argv[1],'rb').read(); i=6; n=0; s=0\n"
      "while True:\n"
      "    c=b[i]; n|=(c&0x7f)<<s; s+=7; i+=1\n"
      "    if c<0x80: break\n"
      "open(sys.argv[2],'wb').write(b[i:i+n])\n";
  ASSERT_EQ(Sh(Quote(::uniter::testing::Python()) + " -c " + Quote(py) + " " + Quote(dir + "/env.bin") + " " +
                Quote(dir + "/rec.bin")).exit_code, 0);
  r = Sh("protoc -I" + Quote(proto_dir) + " --decode=uniter.featdb.proto.NativeRecord native_record.proto < " +
          Quote(dir + "/rec.bin"));
  ASSERT_EQ(r.exit_code, 0) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("format_version: 1"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("name: \"soft_labels\""), std::string::npos);
  EXPECT_NE(r.out.find("shape: 1601"), std::string::npos) << r.out.substr(0, 2000);
  // "auto": features (half zeros) zero mask (+ lz4 when it shrinks); soft_labels zstd + shuffle.
  EXPECT_NE(r.out.find("compression: COMPRESSION_ZSTD"), std::string::npos);
  EXPECT_NE(r.out.find("filter: FILTER_ZERO_MASK_SHUFFLE"), std::string::npos);
  EXPECT_NE(r.out.find("filter: FILTER_BYTE_SHUFFLE"), std::string::npos);
  EXPECT_NE(r.out.find("payload_crc32c: "), std::string::npos);
  EXPECT_NE(r.out.find("raw_size: 115272"), std::string::npos);  // 36*1601*2
}

TEST(ImgDb, NamesFollowUniter) {
  ImgDbOptions o;
  EXPECT_EQ(ImgDbName(o), "feat_th0.2_max100_min10");
  EXPECT_EQ(NbbJsonName(o), "nbb_th0.2_max100_min10.json");
  o.conf_th = 1;
  EXPECT_EQ(ImgDbName(o), "feat_th1.0_max100_min10");
  o.conf_th = 0.15;
  o.codec = Codec::kNpz;
  EXPECT_EQ(ImgDbName(o), "feat_th0.15_max100_min10_compressed");
  o.conf_th = -1;
  o.num_bb = 36;
  EXPECT_EQ(ImgDbName(o), "feat_numbb36_compressed");
  EXPECT_EQ(NbbJsonName(o), "");
  o.keep_all = true;
  o.codec = Codec::kNative;
  EXPECT_EQ(ImgDbName(o), "all_native");
  EXPECT_EQ(PythonFloatRepr(1e-5), "1e-05");
  EXPECT_EQ(PythonFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PythonFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PythonFloatRepr(123.5), "123.5");
  auto p = ParseImgDbName("feat_th0.2_max100_min10_native");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->codec, Codec::kNative);
  EXPECT_EQ(p->conf_th, 0.2);
  EXPECT_FALSE(ParseImgDbName("feat_th0.2_max100"));
}

class PackVsConvertImgdir : public ::testing::Test {
 protected:
  void SetUp() override {
    FEATDB_REQUIRE_REFERENCE();
    root_ = TempDir("pack_vs_py");
    npz_dir_ = root_ + "/coco_val2014";
    RunRef("make_butd " + Quote(npz_dir_) + " 24 11");
  }
  std::string root_, npz_dir_;
};

TEST_F(PackVsConvertImgdir, MsgpackDbIsByteIdentical) {
  for (const char* th : {"0.2", "-1"}) {
    const std::string py_out = root_ + "/py" + th, our_out = root_ + "/ours" + th;
    const std::string db_name = Sh(Quote(::uniter::testing::Python()) + " " + Quote(featdb::testing::RefScript()) +
                                    " convert_imgdir " + Quote(npz_dir_) + " " + Quote(py_out) + " 0 " + th +
                                    " 100 10 36 0 2>/dev/null").out;
    auto r = RunUniter("featdb pack -q " + Quote(npz_dir_) + " " + Quote(our_out) + " --conf-th " + th + " --num-bb 36");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const std::string name = db_name.substr(0, db_name.find('\n'));
    LmdbReader a(py_out + "/coco_val2014/" + name), b(our_out + "/coco_val2014/" + name);
    std::vector<std::string> ka = a.Keys(), kb = b.Keys();
    ASSERT_EQ(ka, kb);
    ASSERT_EQ(ka.size(), 25u);
    for (const auto& k : ka) {
      if (k == "__keys__") continue;  // Python lists keys in pool completion order
      EXPECT_EQ(*a.Get(k), *b.Get(k)) << k;
    }
    const auto pk = nlohmann::json::parse(*a.Get("__keys__")), ok = nlohmann::json::parse(*b.Get("__keys__"));
    EXPECT_EQ(std::set<std::string>(pk.begin(), pk.end()), std::set<std::string>(ok.begin(), ok.end()));
    if (std::string(th) == "0.2") {
      EXPECT_EQ(ReadFile(py_out + "/coco_val2014/nbb_th0.2_max100_min10.json"),
                ReadFile(our_out + "/coco_val2014/nbb_th0.2_max100_min10.json"));
    } else {
      EXPECT_FALSE(fs::exists(our_out + "/coco_val2014/nbb_th-1_max100_min10.json"));
    }
    EXPECT_TRUE(Verify(our_out + "/coco_val2014/" + name).ok());
  }
}

TEST_F(PackVsConvertImgdir, CompressedAndNativeDbsHoldTheSameArrays) {
  const std::string py_out = root_ + "/py";
  RunRef("convert_imgdir " + Quote(npz_dir_) + " " + Quote(py_out) + " 1 0.2 100 10 100 0");
  for (const char* codec : {"npz", "native"}) {
    const std::string out = root_ + "/ours_" + codec;
    auto r = RunUniter(std::string("featdb pack -q --threads 2 --codec ") + codec + " " + Quote(npz_dir_) + " " + Quote(out));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const std::string name = std::string("feat_th0.2_max100_min10") + (codec == std::string("npz") ? "_compressed" : "_native");
    ImgDbReader ref(py_out + "/coco_val2014/feat_th0.2_max100_min10_compressed"), ours(out + "/coco_val2014/" + name);
    ASSERT_EQ(ref.Keys(), ours.Keys());
    EXPECT_EQ(ours.codec(), CodecFromName(codec));
    for (const auto& k : ref.Keys()) {
      auto a = *ref.Get(k);
      std::erase_if(a, [](const Array& x) { return x.name == "allow_pickle"; });
      EXPECT_EQ(a, *ours.Get(k)) << k;
    }
    EXPECT_EQ(ReadFile(py_out + "/coco_val2014/nbb_th0.2_max100_min10.json"),
              ReadFile(out + "/coco_val2014/nbb_th0.2_max100_min10.json"));
  }
  // UNITER's DetectFeatLmdb reads our npz db exactly like its own.
  const std::string ours_dump = root_ + "/ours.npz", ref_dump = root_ + "/ref.npz";
  const std::string a = RunRef("img_read " + Quote(root_ + "/ours_npz/coco_val2014") + " 0.2 100 10 100 1 " + Quote(ours_dump));
  const std::string b = RunRef("img_read " + Quote(py_out + "/coco_val2014") + " 0.2 100 10 100 1 " + Quote(ref_dump));
  EXPECT_EQ(nlohmann::json::parse(a)["name2nbb"], nlohmann::json::parse(b)["name2nbb"]);
  EXPECT_EQ(ReadNpzFile(ours_dump).size(), ReadNpzFile(ref_dump).size());
  const auto x = ReadNpzFile(ours_dump), y = ReadNpzFile(ref_dump);
  for (const Array& arr : y) {
    const Array* o = FindArray(x, arr.name);
    ASSERT_NE(o, nullptr) << arr.name;
    EXPECT_EQ(*o, arr);
  }
}

TEST(ImgDb, UniterWrittenDbsReadIdentically) {
  FEATDB_REQUIRE_REFERENCE();
  for (const char* codec : {"msgpack", "npz"}) {
    const std::string dir = TempDir(std::string("py_img_") + codec);
    RunRef(std::string("img_write ") + Quote(dir) + " " + codec + " 30 5");
    const auto expect = ReadNpzFile(dir + "/expect.npz");  // np.savez of the arrays Python stored
    ImgDbOptions o;
    o.codec = CodecFromName(codec);
    DetectFeatDb db(dir, o);
    ImgDbReader r(dir + "/" + ImgDbName(o));
    ASSERT_EQ(r.size(), 30u);
    ASSERT_EQ(r.StoredKeys()->size(), 30u);
    size_t compared = 0;
    for (const auto& k : r.Keys()) {
      auto arrays = *r.Get(k);
      std::erase_if(arrays, [](const Array& x) { return x.name == "allow_pickle"; });
      for (const Array& a : arrays) {
        const Array* e = FindArray(expect, k + "/" + a.name);
        ASSERT_NE(e, nullptr) << k << "/" << a.name;
        Array renamed = *e;
        renamed.name = a.name;
        EXPECT_EQ(a, renamed);
        ++compared;
      }
      const auto feat = db.Get(k);
      EXPECT_EQ(feat.nbb, db.nbb(k));
      EXPECT_EQ(feat.features, FindArray(arrays, "features")->ToFloat32());
    }
    EXPECT_EQ(compared, 30u * 6);
    const VerifyResult v = Verify(dir + "/" + ImgDbName(o));
    EXPECT_TRUE(v.ok()) << (v.problems.empty() ? "" : v.problems[0]);
  }
}

TEST(ImgDb, PackRejectsBadFilesAndGoesOn) {
  const std::string root = TempDir("bad_inputs");
  const std::string in = root + "/split";
  fs::create_directories(in);
  auto put = [&](const std::string& name, const std::vector<Array>& arrays) { WriteFile(in + "/" + name, WriteNpz(arrays, true)); };
  put("good.npz", RandomRecord(12, 1, true));
  const std::string good = WriteNpz(RandomRecord(12, 2, true), true);
  WriteFile(in + "/truncated.npz", good.substr(0, good.size() / 2));
  WriteFile(in + "/garbage.npz", "this is not a zip file");
  auto nan = RandomRecord(12, 3, true);
  reinterpret_cast<float*>(nan[0].data.data())[5] = std::nanf("");
  put("nan.npz", nan);
  auto inf = RandomRecord(12, 4, true);
  reinterpret_cast<float*>(inf[2].data.data())[0] = INFINITY;
  put("inf.npz", inf);
  auto wrong_ndim = RandomRecord(12, 5, true);
  wrong_ndim.push_back(Array{"cube", DType::kFloat32, {1, 1, 1}, std::string(4, '\0')});
  put("ndim.npz", wrong_ndim);
  put("zero_boxes.npz", RandomRecord(0, 6, true));
  auto missing = RandomRecord(12, 7, true);
  missing.erase(missing.begin() + 2);  // no conf
  put("missing_conf.npz", missing);
  auto rows = RandomRecord(12, 8, true);
  rows[1] = Array::FromFloat32("norm_bb", {11, 6}, std::vector<float>(66, 0.5f));
  put("rows.npz", rows);
  auto dtype = RandomRecord(12, 9, true);
  dtype[0] = Array{"features", DType::kInt32, {12, 2048}, std::string(12 * 2048 * 4, '\0')};
  put("dtype.npz", dtype);
  auto r = RunUniter("featdb pack -q " + Quote(in) + " " + Quote(root + "/out"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("1 written"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("9 rejected"), std::string::npos) << r.out;
  const std::string rejects = ReadFile(root + "/out/split/feat_th0.2_max100_min10.rejects.jsonl");
  for (const char* f : {"truncated.npz", "garbage.npz", "nan.npz", "inf.npz", "ndim.npz", "zero_boxes.npz",
                        "missing_conf.npz", "rows.npz", "dtype.npz"})
    EXPECT_NE(rejects.find(f), std::string::npos) << f << "\n" << rejects;
  EXPECT_NE(rejects.find("NaN"), std::string::npos);
  EXPECT_NE(rejects.find("wrong ndim"), std::string::npos);
  EXPECT_NE(rejects.find("zero boxes"), std::string::npos);
  EXPECT_NE(rejects.find("missing array 'conf'"), std::string::npos);
  ImgDbReader db(root + "/out/split/feat_th0.2_max100_min10");
  EXPECT_EQ(db.Keys(), std::vector<std::string>{"good.npz"});
  // A missing sidecar and a non-LMDB folder are clear errors, not crashes.
  fs::remove(root + "/out/split/nbb_th0.2_max100_min10.json");
  EXPECT_THROW(DetectFeatDb(root + "/out/split", ImgDbOptions{}), FormatError);
  EXPECT_FALSE(Verify(root + "/out/split/feat_th0.2_max100_min10").ok());
  r = RunUniter("dump " + Quote(in));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("not an LMDB"), std::string::npos) << r.out;
  r = RunUniter("featdb pack " + Quote(root + "/nope") + " " + Quote(root + "/out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

TEST(ImgDb, ConvertMergeVerifyAndDump) {
  const std::string root = TempDir("tools");
  for (int shard = 0; shard < 2; ++shard) {
    ImgDbWriter w(root + "/shard" + std::to_string(shard) + "/split", ImgDbOptions{});
    for (int i = 0; i < 6; ++i) {
      const int idx = shard * 4 + i;
      w.Put("img" + std::to_string(idx) + ".npz", RandomRecord(5 + idx * 3, idx, true));
    }
    w.Close();  // images 4 and 5 are in both shards, identical
  }
  const std::string name = "feat_th0.2_max100_min10";
  auto r = RunUniter("featdb merge -q " + Quote(root + "/merged") + " " + Quote(root + "/shard0/split/" + name) + " " +
                     Quote(root + "/shard1/split/" + name));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("10 records merged, 2 duplicates"), std::string::npos) << r.out;
  r = RunUniter("featdb verify " + Quote(root + "/merged/" + name));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = RunUniter("featdb convert -q --codec native " + Quote(root + "/merged/" + name) + " " + Quote(root + "/merged"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ImgDbReader a(root + "/merged/" + name), b(root + "/merged/" + name + "_native");
  ASSERT_EQ(a.Keys(), b.Keys());
  for (const auto& k : a.Keys()) EXPECT_EQ(*a.Get(k), *b.Get(k));
  EXPECT_EQ(RunUniter("featdb verify " + Quote(root + "/merged/" + name + "_native")).exit_code, 0);
  // Dump: keys, a record, stats, JSON.
  r = RunUniter("dump " + Quote(root + "/merged/" + name + "_native"));
  EXPECT_EQ(r.out.substr(0, 9), "img0.npz\n");
  r = RunUniter("dump --json " + Quote(root + "/merged/" + name + "_native") + " img1.npz");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["codec"], "native");
  EXPECT_EQ(j["arrays"][0]["shape"], nlohmann::json({8, 2048}));  // 8 boxes, all kept (nbb 10)
  r = RunUniter("dump --stats --json " + Quote(root + "/merged/" + name));
  const auto s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["count"], 10);
  EXPECT_EQ(s["codecs"]["msgpack"], 10);
  // A corrupted native record fails verify, naming the record.
  {
    LmdbWriter w(root + "/merged/" + name + "_native", 10);
    std::string v = *ImgDbReader(root + "/merged/" + name + "_native").GetRaw("img3.npz");
    v[v.size() / 2] ^= 0x10;
    w.Put("img3.npz", v);
  }
  r = RunUniter("featdb verify " + Quote(root + "/merged/" + name + "_native"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("img3.npz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checksum"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace uniter::featdb
