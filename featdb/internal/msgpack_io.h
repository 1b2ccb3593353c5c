// A minimal, strict msgpack pull reader shared by Value and the msgpack-numpy
// codec (the writer is featdb/msgpack_writer.h). It hands out views into the
// input (no copies), checks every length against the bytes left, and throws
// FormatError.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/error.h"

namespace uniter::featdb::internal {

struct MsgpackItem {
  enum class Kind { kNil, kBool, kInt, kUInt, kFloat, kStr, kBin, kArray, kMap };
  Kind kind = Kind::kNil;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string_view bytes;  // kStr, kBin
  uint64_t count = 0;      // kArray, kMap: number of elements / pairs that follow
};

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view in) : in_(in) {}

  size_t remaining() const { return in_.size() - pos_; }
  [[noreturn]] void Fail(const std::string& what) const {
    throw FormatError("malformed msgpack at byte " + std::to_string(pos_) + ": " + what);
  }

  MsgpackItem Next() {
    MsgpackItem it;
    using K = MsgpackItem::Kind;
    const uint8_t t = Byte();
    if (t <= 0x7f) { it.kind = K::kUInt; it.u = t; it.i = t; return it; }
    if (t >= 0xe0) { it.kind = K::kInt; it.i = int8_t(t); return it; }
    if ((t & 0xf0) == 0x80) { it.kind = K::kMap; it.count = t & 0x0f; return Check(it, 2); }
    if ((t & 0xf0) == 0x90) { it.kind = K::kArray; it.count = t & 0x0f; return Check(it, 1); }
    if ((t & 0xe0) == 0xa0) { it.kind = K::kStr; it.bytes = Take(t & 0x1f); return it; }
    switch (t) {
      case 0xc0: return it;
      case 0xc2: it.kind = K::kBool; it.b = false; return it;
      case 0xc3: it.kind = K::kBool; it.b = true; return it;
      case 0xc4: it.kind = K::kBin; it.bytes = Take(Be(1)); return it;
      case 0xc5: it.kind = K::kBin; it.bytes = Take(Be(2)); return it;
      case 0xc6: it.kind = K::kBin; it.bytes = Take(Be(4)); return it;
      case 0xca: {
        uint32_t bits = uint32_t(Be(4));
        float f;
        std::memcpy(&f, &bits, 4);
        it.kind = K::kFloat; it.d = f;
        return it;
      }
      case 0xcb: {
        uint64_t bits = Be(8);
        std::memcpy(&it.d, &bits, 8);
        it.kind = K::kFloat;
        return it;
      }
      case 0xcc: it.kind = K::kUInt; it.u = Be(1); it.i = int64_t(it.u); return it;
      case 0xcd: it.kind = K::kUInt; it.u = Be(2); it.i = int64_t(it.u); return it;
      case 0xce: it.kind = K::kUInt; it.u = Be(4); it.i = int64_t(it.u); return it;
      case 0xcf: it.kind = K::kUInt; it.u = Be(8); it.i = int64_t(it.u); return it;
      case 0xd0: it.kind = K::kInt; it.i = int8_t(Be(1)); return it;
      case 0xd1: it.kind = K::kInt; it.i = int16_t(Be(2)); return it;
      case 0xd2: it.kind = K::kInt; it.i = int32_t(Be(4)); return it;
      case 0xd3: it.kind = K::kInt; it.i = int64_t(Be(8)); return it;
      case 0xd9: it.kind = K::kStr; it.bytes = Take(Be(1)); return it;
      case 0xda: it.kind = K::kStr; it.bytes = Take(Be(2)); return it;
      case 0xdb: it.kind = K::kStr; it.bytes = Take(Be(4)); return it;
      case 0xdc: it.kind = K::kArray; it.count = Be(2); return Check(it, 1);
      case 0xdd: it.kind = K::kArray; it.count = Be(4); return Check(it, 1);
      case 0xde: it.kind = K::kMap; it.count = Be(2); return Check(it, 2);
      case 0xdf: it.kind = K::kMap; it.count = Be(4); return Check(it, 2);
      default: break;
    }
    --pos_;
    Fail("unsupported type byte 0x" + Hex(t) + (t >= 0xc7 && t <= 0xd8 && t != 0xca && t != 0xcb ? " (ext)" : ""));
  }

  // Skips one complete item (recursively), with a depth limit.
  void Skip(int depth = 0) {
    if (depth > 64) Fail("nesting deeper than 64");
    MsgpackItem it = Next();
    if (it.kind == MsgpackItem::Kind::kArray) {
      for (uint64_t i = 0; i < it.count; ++i) Skip(depth + 1);
    } else if (it.kind == MsgpackItem::Kind::kMap) {
      for (uint64_t i = 0; i < 2 * it.count; ++i) Skip(depth + 1);
    }
  }

 private:
  // Every element needs at least one byte: reject absurd counts before allocating.
  MsgpackItem Check(const MsgpackItem& it, uint64_t per) {
    if (it.count * per > remaining()) Fail("container claims " + std::to_string(it.count) + " items, too few bytes");
    return it;
  }
  uint8_t Byte() {
    if (pos_ >= in_.size()) Fail("truncated");
    return uint8_t(in_[pos_++]);
  }
  uint64_t Be(int n) {
    if (remaining() < size_t(n)) Fail("truncated");
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | uint8_t(in_[pos_++]);
    return v;
  }
  std::string_view Take(uint64_t n) {
    if (n > remaining()) Fail("length " + std::to_string(n) + " exceeds the " + std::to_string(remaining()) + " bytes left");
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  static std::string Hex(uint8_t b) {
    const char* d = "0123456789abcdef";
    return std::string{d[b >> 4], d[b & 15]};
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace uniter::featdb::internal
