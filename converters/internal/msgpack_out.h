// Writes a txt_db record's msgpack straight from the parsed JSON, without a
// featdb::Value tree: UNITER's prepro keeps every original field of a record
// and adds a few, and building (then encoding) a Value per record was most of
// a converter's cost. Bytes follow featdb::EncodeMsgpack (Python's
// msgpack.dumps(use_bin_type=True)): smallest ints, non-negative as uint,
// float64, str8 for 32..255-byte strings.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace uniter::converters {

// Appends msgpack items to a caller-owned buffer (reuse it: no reallocation
// once it is big enough). Not thread safe.
class MsgpackOut {
 public:
  explicit MsgpackOut(std::string* out) : out_(out) {}

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
  // A JSON value as ToValue + EncodeMsgpack would write it, unless an object
  // in it repeats a key: then exact() turns false.
  void Json(simdjson::dom::element e);
  bool exact() const { return exact_; }

 private:
  void Byte(uint8_t b) { out_->push_back(char(b)); }
  void Tagged(uint8_t tag, uint64_t v, int n) {
    char b[9];
    b[0] = char(tag);
    for (int i = 0; i < n; ++i) b[1 + i] = char((v >> (8 * (n - 1 - i))) & 0xff);
    out_->append(b, 1 + n);
  }

  std::string* out_;
  bool exact_ = true;
};

// Starts a map holding every field of `o` followed by `added.size()` fields the
// caller writes next (key, then value, in the order given), and writes the
// original fields, in one pass. Returns false when the direct path would not
// match Python's dict semantics: `o` (at any depth) repeats a key, or already
// holds one of `added` (Python replaces it in place). The caller then discards
// what was written and takes the featdb::Value path (ObjectToMap + Set).
bool BeginRecordWithOriginal(simdjson::dom::object o, std::initializer_list<std::string_view> added,
                             MsgpackOut& w);

// Per-thread scratch buffer for a record's msgpack (cleared; capacity kept).
std::string& MsgpackScratch();

}  // namespace uniter::converters
