// A msgpack value as UNITER's records hold it (txt_db examples, msgpack-numpy
// image records), its msgpack codec, and the lz4 frame format txt_db values use.
//
// Encoding follows Python's `msgpack.dumps(v, use_bin_type=True)`: str for
// text, bin for bytes, the smallest int encoding (positive ints as uint),
// doubles as float64. Decoding follows `msgpack.loads(b, raw=False)`: float32
// becomes a double; map keys may be str or bin (msgpack-numpy writes bin keys).
//
// Value is a plain value type; copies are deep. Not thread safe for concurrent
// mutation; concurrent const use is fine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace uniter::featdb {

class Value {
 public:
  enum class Type { kNil, kBool, kInt, kFloat, kStr, kBin, kArray, kMap };
  using MapItems = std::vector<std::pair<std::string, Value>>;

  Value();  // nil
  Value(bool b);
  Value(int v);
  Value(int64_t v);
  Value(uint64_t v);
  Value(double v);
  // Guard against `Value("text")` silently becoming a bool: use Str().
  Value(const char*) = delete;

  static Value Str(std::string s);
  static Value Bin(std::string bytes);
  static Value Array(std::vector<Value> items = {});
  static Value Map();  // keys are strings; insertion order is kept and written in that order
  static Value IntList(const std::vector<int32_t>& ids);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }

  // Map: insert or replace (keeps the position of a replaced key); returns *this.
  Value& Set(std::string key, Value v);
  // Array: push_back; returns *this.
  Value& Append(Value v);
  // Map lookup, nullptr if absent (or if this is not a map).
  const Value* Find(std::string_view key) const;
  // Map lookup; throws uniter::FormatError naming the key when absent.
  const Value& at(std::string_view key) const;

  // All as_* throw uniter::FormatError on a type mismatch.
  bool as_bool() const;
  int64_t as_int() const;  // uint64 above INT64_MAX throws
  double as_double() const;  // accepts ints too
  const std::string& as_str() const;
  const std::string& as_bin() const;
  const std::vector<Value>& as_array() const;
  const MapItems& as_map() const;
  std::vector<int32_t> AsIntList() const;  // array of ints (each must fit int32)

  // True when an int was written as unsigned (msgpack uint family).
  bool is_unsigned() const { return type_ == Type::kInt && unsigned_; }
  uint64_t as_uint() const;

  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

  static const char* TypeName(Type t);

 private:
  [[noreturn]] void Mismatch(Type wanted) const;

  Type type_ = Type::kNil;
  bool unsigned_ = false;
  union {
    bool b_;
    int64_t i_;
    uint64_t u_;
    double d_;
  };
  std::string s_;  // kStr, kBin
  std::vector<Value> array_;  // kArray
  MapItems map_;  // kMap
};

// msgpack bytes of `v` (see the header comment for the encoding rules).
std::string EncodeMsgpack(const Value& v);
// Throws FormatError on malformed input (truncated, unknown type byte, ext
// types, non-string map keys, nesting deeper than 64, trailing bytes); never crashes.
Value DecodeMsgpack(std::string_view bytes);

// lz4 frame format, as Python's `lz4.frame.compress` / `decompress` use.
std::string Lz4FrameCompress(std::string_view raw);
// Throws FormatError on a corrupt frame. Concatenated frames are accepted.
std::string Lz4FrameDecompress(std::string_view frame);

}  // namespace uniter::featdb
