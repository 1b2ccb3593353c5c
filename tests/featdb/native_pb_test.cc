// The native codec's hand-written wire format against libprotobuf: records
// written by EncodeNative parse with the classes protoc generates from
// featdb/native_record.proto (DecodeNativePb) to the very arrays that were
// encoded, for every compression, filter and dtype; corruption fails both.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "featdb/array.h"
#include "featdb/codecs.h"
#include "featdb/native_pb.h"

namespace uniter::featdb {
namespace {

std::vector<Array> Record(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> feat(static_cast<size_t>(n) * 2048), soft(static_cast<size_t>(n) * 1601), conf(n);
  for (float& x : feat) x = std::max(0.0f, g(rng)) * 2;  // mostly zeros: the zero-mask filter
  for (float& x : soft) x = std::abs(g(rng)) / 1601;       // no zeros: byte shuffle
  for (float& x : conf) x = std::abs(g(rng));
  std::vector<Array> out = {ToStorageDType(Array::FromFloat32("features", {n, 2048}, feat)),
                            ToStorageDType(Array::FromFloat32("soft_labels", {n, 1601}, soft)),
                            Array::FromFloat32("conf", {n}, conf)};
  std::string ids(static_cast<size_t>(n) * 8, '\0');
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<char>(rng());
  out.push_back(Array{"ids", DType::kInt64, {n}, ids});
  out.push_back(Array{"flag", DType::kBool, {}, std::string(1, '\x01')});  // 0-d, below the filter threshold
  out.push_back(Array{"empty", DType::kUInt8, {0, 3}, ""});
  return out;
}

TEST(NativePb, GeneratedClassesReadEveryArrayTheHandWrittenCodecWrote) {
  for (const char* compression : {"auto", "lz4", "zstd", "none"}) {
    for (int n : {1, 10, 100}) {
      SCOPED_TRACE(std::string(compression) + " " + std::to_string(n));
      const std::vector<Array> rec = Record(n, static_cast<uint32_t>(n));
      NativeOptions o;
      o.compression = compression;
      const std::string v = EncodeNative(rec, o);
      EXPECT_EQ(DecodeNativePb(v), rec);
      EXPECT_EQ(DecodeNative(v), rec);
      const std::vector<Array> only = DecodeNativePb(v, {"conf"});
      ASSERT_EQ(only.size(), 1u);
      EXPECT_EQ(only[0], rec[2]);
    }
  }
}

TEST(NativePb, PayloadCorruptionAndTruncationFailThroughLibprotobufToo) {
  const std::string v = EncodeNative(Record(4, 9));
  // A flipped byte in the middle of the features payload: the payload CRC.
  std::string bad = v;
  bad[bad.size() / 3] = static_cast<char>(bad[bad.size() / 3] ^ 0x40);
  EXPECT_THROW(DecodeNativePb(bad), FormatError);
  EXPECT_THROW(DecodeNative(bad), FormatError);
  for (size_t n = 0; n < v.size(); n += 97) EXPECT_THROW(DecodeNativePb(v.substr(0, n)), FormatError) << n;
}

}  // namespace
}  // namespace uniter::featdb
