// Value, msgpack, lz4 frames and fp16, checked against Python's msgpack, lz4 and numpy.
#include "featdb/value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "common/error.h"
#include "featdb/array.h"
#include "featdb/example.h"
#include "tests/featdb/featdb_test_util.h"

namespace uniter::featdb {
namespace {

using featdb::testing::Sh;
using ::uniter::testing::Quote;

Value SampleValue() {
  Value v = Value::Map();
  v.Set("input_ids", Value::IntList({101, 2, 30000, 0}));
  v.Set("img_fname", Value::Array({Value::Str("a.npz"), Value::Str("b.npz")}));
  v.Set("target", Value::Map().Set("labels", Value::IntList({1, 2})).Set("scores", Value::Array({Value(1.0), Value(0.3)})));
  v.Set("neg", Value(int64_t{-200000}));
  v.Set("u", Value(uint64_t{18446744073709551615ull}));
  v.Set("nil", Value());
  v.Set("b", Value(false));
  v.Set("bytes", Value::Bin(std::string("\x00\xff", 2)));
  v.Set("text", Value::Str("héllo \xF0\x9F\x99\x82"));
  v.Set("long", Value::Str(std::string(70000, 'x')));
  Value big = Value::Array();
  for (int i = 0; i < 70000; ++i) big.Append(Value(i - 35000));
  v.Set("big", big);
  return v;
}

TEST(Value, AccessorsAndErrors) {
  Value v = SampleValue();
  EXPECT_EQ(InputIds(v), (std::vector<int32_t>{101, 2, 30000, 0}));
  EXPECT_EQ(ImgFnames(v), (std::vector<std::string>{"a.npz", "b.npz"}));
  const SoftTarget t = SoftTargetField(v);
  EXPECT_EQ(t.labels, (std::vector<int32_t>{1, 2}));
  EXPECT_FLOAT_EQ(t.scores[1], 0.3f);
  EXPECT_EQ(v.at("neg").as_int(), -200000);
  EXPECT_DOUBLE_EQ(v.at("neg").as_double(), -200000.0);
  EXPECT_THROW(v.at("u").as_int(), FormatError);  // above INT64_MAX
  EXPECT_EQ(v.Find("missing"), nullptr);
  try {
    v.at("missing");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  EXPECT_THROW(v.at("text").as_bin(), FormatError);
  EXPECT_THROW(IntField(v, "text"), FormatError);
  // Set replaces in place, keeping the order.
  v.Set("input_ids", Value(1));
  EXPECT_EQ(v.as_map()[0].first, "input_ids");
  EXPECT_EQ(v.as_map()[0].second.as_int(), 1);
}

TEST(Msgpack, RoundTripsAndMatchesPythonBytes) {
  FEATDB_REQUIRE_REFERENCE();
  const Value v = SampleValue();
  const std::string bytes = EncodeMsgpack(v);
  EXPECT_EQ(DecodeMsgpack(bytes), v);
  // Python decodes our bytes and re-encodes them with use_bin_type=True: the
  // same bytes come back iff we encode exactly like msgpack.dumps does.
  const std::string dir = ::uniter::testing::TempDir("msgpack");
  ::uniter::testing::WriteFile(dir + "/v.bin", bytes);
  const std::string py =
      "import msgpack,sys; b=open(sys.argv[1],'rb').read(); v=msgpack.loads(b, raw=False); "
      "sys.stdout.write(msgpack.dumps(v, use_bin_type=True).hex())";
  auto r = Sh(Quote(::uniter::testing::Python()) + " -c " + Quote(py) + " " + Quote(dir + "/v.bin"));
  ASSERT_EQ(r.exit_code, 0);
  std::string hex;
  for (unsigned char c : bytes) {
    char buf[3];
    std::snprintf(buf, sizeof(buf), "%02x", c);
    hex += buf;
  }
  EXPECT_EQ(r.out, hex);
}

TEST(Msgpack, MalformedInputIsAFormatError) {
  const std::string good = EncodeMsgpack(SampleValue());
  // Every truncation is an error, never a crash.
  for (size_t n = 0; n < good.size(); n += (n < 200 ? 1 : 997)) EXPECT_THROW(DecodeMsgpack(good.substr(0, n)), FormatError) << n;
  EXPECT_THROW(DecodeMsgpack(good + "x"), FormatError);          // trailing bytes
  EXPECT_THROW(DecodeMsgpack(std::string("\xc1", 1)), FormatError);  // never-used byte
  EXPECT_THROW(DecodeMsgpack(std::string("\xd4\x01\x02", 3)), FormatError);  // ext
  EXPECT_THROW(DecodeMsgpack(std::string("\xdd\xff\xff\xff\xff", 5)), FormatError);  // huge array, no bytes
  EXPECT_THROW(DecodeMsgpack(std::string("\x81\x01\x01", 3)), FormatError);  // int map key
  EXPECT_THROW(DecodeMsgpack(std::string(100, '\x91')), FormatError);  // nesting too deep
}

TEST(Lz4Frame, InteroperatesWithPythonLz4) {
  FEATDB_REQUIRE_REFERENCE();
  std::string raw;
  std::mt19937 rng(5);
  for (int i = 0; i < 300000; ++i) raw.push_back(static_cast<char>(rng() % 7));
  const std::string dir = ::uniter::testing::TempDir("lz4");
  ::uniter::testing::WriteFile(dir + "/ours.lz4", Lz4FrameCompress(raw));
  ::uniter::testing::WriteFile(dir + "/raw", raw);
  const std::string py =
      "import lz4.frame,sys; d=sys.argv[1]; raw=open(d+'/raw','rb').read(); "
      "assert lz4.frame.decompress(open(d+'/ours.lz4','rb').read())==raw; "
      "open(d+'/py.lz4','wb').write(lz4.frame.compress(raw))";
  ASSERT_EQ(Sh(Quote(::uniter::testing::Python()) + " -c " + Quote(py) + " " + Quote(dir)).exit_code, 0);
  EXPECT_EQ(Lz4FrameDecompress(::uniter::testing::ReadFile(dir + "/py.lz4")), raw);
  const std::string frame = Lz4FrameCompress(raw);
  EXPECT_THROW(Lz4FrameDecompress(frame.substr(0, frame.size() / 2)), FormatError);
  EXPECT_THROW(Lz4FrameDecompress("not a frame at all"), FormatError);
}

TEST(Float16, MatchesNumpyAstype) {
  FEATDB_REQUIRE_REFERENCE();
  std::vector<uint32_t> bits = {0x00000000, 0x80000000, 0x3f800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x477fe000,
                                0x477ff000, 0x477fefff, 0x38800000, 0x387fffff, 0x33000000, 0x33000001, 0x32ffffff,
                                0x3e4ccccd, 0x00000001, 0x3a800800, 0x3a801000, 0x3a801800};
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    float f = std::ldexp(static_cast<float>(rng() % 100000) / 100000.0f, static_cast<int>(rng() % 50) - 30);
    if (rng() & 1) f = -f;
    uint32_t b;
    std::memcpy(&b, &f, 4);
    bits.push_back(b);
  }
  std::ostringstream args;
  args << "float16";
  for (uint32_t b : bits) args << " " << std::hex << b;
  std::istringstream want(featdb::testing::RunRef(args.str()));
  std::vector<float> as_float(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    std::memcpy(&as_float[i], &bits[i], 4);
    std::string h;
    want >> h;
    const uint16_t numpy = static_cast<uint16_t>(std::stoul(h, nullptr, 16));
    EXPECT_EQ(FloatToHalf(as_float[i]), numpy) << std::hex << bits[i];
    if ((numpy & 0x7c00) != 0x7c00 || !(numpy & 0x3ff)) {  // NaN payloads aside, the round trip is exact
      const float back = HalfToFloat(numpy);
      EXPECT_EQ(FloatToHalf(back), numpy);
    }
  }
  // The bulk (F16C) path agrees with the scalar one.
  std::vector<uint16_t> bulk(bits.size());
  FloatToHalfN(as_float.data(), bulk.data(), bulk.size());
  std::vector<float> widened(bits.size());
  HalfToFloatN(bulk.data(), widened.data(), bulk.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    EXPECT_EQ(bulk[i], FloatToHalf(as_float[i])) << i;
    const float s = HalfToFloat(bulk[i]);
    EXPECT_TRUE(widened[i] == s || (std::isnan(widened[i]) && std::isnan(s))) << i;
  }
}

}  // namespace
}  // namespace uniter::featdb
