// The one msgpack writer: the byte rules of Python's
// msgpack.dumps(obj, use_bin_type=True), which UNITER's txt_db and
// msgpack-numpy img_db values are written with:
//   - ints in the smallest encoding, non-negative ones in the uint family;
//   - floats as float64 (Python floats are doubles);
//   - str as fixstr / str8 / str16 / str32, bytes as bin8 / bin16 / bin32;
//   - arrays and maps as fix / 16 / 32 headers.
// Used by featdb (Value, msgpack-numpy) and by the converters' direct path
// from parsed JSON to a record's bytes. tests/featdb/msgpack_writer_test.cc
// checks it against Python's msgpack and decodes it with msgpack-cxx.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace uniter::featdb {

// Appends msgpack items to a buffer: its own (Take() hands it out), or a
// caller-owned one (reuse it: no reallocation once it is big enough).
// Not thread safe; not copyable (it may point at its own buffer).
class MsgpackWriter {
 public:
  MsgpackWriter() : out_(&own_) {}
  explicit MsgpackWriter(std::string* out) : out_(out) {}
  MsgpackWriter(const MsgpackWriter&) = delete;
  MsgpackWriter& operator=(const MsgpackWriter&) = delete;

  void Nil() { Byte(0xc0); }
  void Bool(bool b) { Byte(b ? 0xc3 : 0xc2); }
  void UInt(uint64_t v) {
    if (v < 128) Byte(uint8_t(v));
    else if (v <= 0xff) Tagged(0xcc, v, 1);
    else if (v <= 0xffff) Tagged(0xcd, v, 2);
    else if (v <= 0xffffffffu) Tagged(0xce, v, 4);
    else Tagged(0xcf, v, 8);
  }
  void Int(int64_t v) {
    if (v >= 0) return UInt(uint64_t(v));
    if (v >= -32) Byte(uint8_t(int8_t(v)));
    else if (v >= -128) Tagged(0xd0, uint64_t(v), 1);
    else if (v >= -32768) Tagged(0xd1, uint64_t(v), 2);
    else if (v >= -2147483648LL) Tagged(0xd2, uint64_t(v), 4);
    else Tagged(0xd3, uint64_t(v), 8);
  }
  void Double(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    Tagged(0xcb, bits, 8);
  }
  void Str(std::string_view s) {
    const size_t n = s.size();
    if (n < 32) Byte(uint8_t(0xa0 | n));
    else if (n <= 0xff) Tagged(0xd9, n, 1);
    else if (n <= 0xffff) Tagged(0xda, n, 2);
    else Tagged(0xdb, n, 4);
    out_->append(s);
  }
  void Bin(std::string_view s) {
    BinHeader(s.size());
    out_->append(s);
  }
  // A bin header whose payload the caller appends next with Raw().
  void BinHeader(size_t n) {
    if (n <= 0xff) Tagged(0xc4, n, 1);
    else if (n <= 0xffff) Tagged(0xc5, n, 2);
    else Tagged(0xc6, n, 4);
  }
  void Raw(std::string_view s) { out_->append(s); }
  void ArrayHeader(size_t n) {
    if (n < 16) Byte(uint8_t(0x90 | n));
    else if (n <= 0xffff) Tagged(0xdc, n, 2);
    else Tagged(0xdd, n, 4);
  }
  void MapHeader(size_t n) {
    if (n < 16) Byte(uint8_t(0x80 | n));
    else if (n <= 0xffff) Tagged(0xde, n, 2);
    else Tagged(0xdf, n, 4);
  }
  void IntList(const std::vector<int32_t>& ids) {
    ArrayHeader(ids.size());
    for (int32_t id : ids) Int(id);
  }

  void Reserve(size_t n) { out_->reserve(n); }
  const std::string& bytes() const { return *out_; }
  std::string Take() { return std::move(*out_); }

 private:
  void Byte(uint8_t b) { out_->push_back(char(b)); }
  // Tag byte + n big-endian bytes of v, appended at once.
  void Tagged(uint8_t tag, uint64_t v, int n) {
    char b[9];
    b[0] = char(tag);
    for (int i = 0; i < n; ++i) b[1 + i] = char((v >> (8 * (n - 1 - i))) & 0xff);
    out_->append(b, size_t(1 + n));
  }

  std::string own_;
  std::string* out_;
};

}  // namespace uniter::featdb
