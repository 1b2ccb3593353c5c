#include "featdb/value.h"

#include <lz4frame.h>

#include <cstring>
#include <limits>

#include "common/error.h"
#include "featdb/internal/msgpack_io.h"
#include "featdb/msgpack_writer.h"

namespace uniter::featdb {

Value::Value() : i_(0) {}
Value::Value(bool b) : type_(Type::kBool), b_(b) {}
Value::Value(int v) : type_(Type::kInt), i_(v) {}
Value::Value(int64_t v) : type_(Type::kInt), i_(v) {}
Value::Value(uint64_t v) : type_(Type::kInt), u_(v) {
  // Only values above INT64_MAX need the unsigned flag; smaller ones compare as ints.
  unsigned_ = v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}
Value::Value(double v) : type_(Type::kFloat), d_(v) {}

Value Value::Str(std::string s) {
  Value v;
  v.type_ = Type::kStr;
  v.s_ = std::move(s);
  return v;
}
Value Value::Bin(std::string bytes) {
  Value v;
  v.type_ = Type::kBin;
  v.s_ = std::move(bytes);
  return v;
}
Value Value::Array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kArray;
  v.array_ = std::move(items);
  return v;
}
Value Value::Map() {
  Value v;
  v.type_ = Type::kMap;
  return v;
}
Value Value::IntList(const std::vector<int32_t>& ids) {
  Value v = Array();
  v.array_.reserve(ids.size());
  for (int32_t id : ids) v.array_.emplace_back(static_cast<int64_t>(id));
  return v;
}

const char* Value::TypeName(Type t) {
  switch (t) {
    case Type::kNil: return "nil";
    case Type::kBool: return "bool";
    case Type::kInt: return "int";
    case Type::kFloat: return "float";
    case Type::kStr: return "str";
    case Type::kBin: return "bin";
    case Type::kArray: return "array";
    case Type::kMap: return "map";
  }
  return "?";
}

void Value::Mismatch(Type wanted) const {
  throw FormatError(std::string("msgpack value is ") + TypeName(type_) + ", expected " + TypeName(wanted));
}

Value& Value::Set(std::string key, Value v) {
  if (type_ != Type::kMap) Mismatch(Type::kMap);
  for (auto& kv : map_) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return *this;
    }
  }
  map_.emplace_back(std::move(key), std::move(v));
  return *this;
}

Value& Value::Append(Value v) {
  if (type_ != Type::kArray) Mismatch(Type::kArray);
  array_.push_back(std::move(v));
  return *this;
}

const Value* Value::Find(std::string_view key) const {
  if (type_ != Type::kMap) return nullptr;
  for (const auto& kv : map_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  if (type_ != Type::kMap) Mismatch(Type::kMap);
  const Value* v = Find(key);
  if (!v) throw FormatError("record has no field '" + std::string(key) + "'");
  return *v;
}

bool Value::as_bool() const {
  if (type_ != Type::kBool) Mismatch(Type::kBool);
  return b_;
}
int64_t Value::as_int() const {
  if (type_ != Type::kInt) Mismatch(Type::kInt);
  if (unsigned_) throw FormatError("msgpack int " + std::to_string(u_) + " does not fit int64");
  return i_;
}
uint64_t Value::as_uint() const {
  if (type_ != Type::kInt) Mismatch(Type::kInt);
  if (!unsigned_ && i_ < 0) throw FormatError("msgpack int " + std::to_string(i_) + " is negative");
  return u_;
}
double Value::as_double() const {
  if (type_ == Type::kFloat) return d_;
  if (type_ == Type::kInt) return unsigned_ ? static_cast<double>(u_) : static_cast<double>(i_);
  Mismatch(Type::kFloat);
}
const std::string& Value::as_str() const {
  if (type_ != Type::kStr) Mismatch(Type::kStr);
  return s_;
}
const std::string& Value::as_bin() const {
  if (type_ != Type::kBin) Mismatch(Type::kBin);
  return s_;
}
const std::vector<Value>& Value::as_array() const {
  if (type_ != Type::kArray) Mismatch(Type::kArray);
  return array_;
}
const Value::MapItems& Value::as_map() const {
  if (type_ != Type::kMap) Mismatch(Type::kMap);
  return map_;
}
std::vector<int32_t> Value::AsIntList() const {
  const auto& a = as_array();
  std::vector<int32_t> out;
  out.reserve(a.size());
  for (const Value& v : a) {
    const int64_t x = v.as_int();
    if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
      throw FormatError("id " + std::to_string(x) + " does not fit int32");
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

bool Value::operator==(const Value& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::kNil: return true;
    case Type::kBool: return b_ == o.b_;
    case Type::kInt: return unsigned_ == o.unsigned_ && i_ == o.i_;
    case Type::kFloat: return d_ == o.d_ || (d_ != d_ && o.d_ != o.d_);
    case Type::kStr:
    case Type::kBin: return s_ == o.s_;
    case Type::kArray: return array_ == o.array_;
    case Type::kMap: return map_ == o.map_;
  }
  return false;
}

namespace {

void Encode(const Value& v, MsgpackWriter& w) {
  switch (v.type()) {
    case Value::Type::kNil: w.Nil(); break;
    case Value::Type::kBool: w.Bool(v.as_bool()); break;
    case Value::Type::kInt:
      if (v.is_unsigned()) w.UInt(v.as_uint());
      else w.Int(v.as_int());
      break;
    case Value::Type::kFloat: w.Double(v.as_double()); break;
    case Value::Type::kStr: w.Str(v.as_str()); break;
    case Value::Type::kBin: w.Bin(v.as_bin()); break;
    case Value::Type::kArray:
      w.ArrayHeader(v.as_array().size());
      for (const Value& x : v.as_array()) Encode(x, w);
      break;
    case Value::Type::kMap:
      w.MapHeader(v.as_map().size());
      for (const auto& [k, x] : v.as_map()) {
        w.Str(k);
        Encode(x, w);
      }
      break;
  }
}

Value Decode(internal::MsgpackReader& r, int depth) {
  if (depth > 64) r.Fail("nesting deeper than 64");
  internal::MsgpackItem it = r.Next();
  using K = internal::MsgpackItem::Kind;
  switch (it.kind) {
    case K::kNil: return Value();
    case K::kBool: return Value(it.b);
    case K::kInt: return Value(it.i);
    case K::kUInt: return Value(it.u);
    case K::kFloat: return Value(it.d);
    case K::kStr: return Value::Str(std::string(it.bytes));
    case K::kBin: return Value::Bin(std::string(it.bytes));
    case K::kArray: {
      std::vector<Value> items;
      items.reserve(std::min<size_t>(it.count, r.remaining()));
      for (uint64_t i = 0; i < it.count; ++i) items.push_back(Decode(r, depth + 1));
      return Value::Array(std::move(items));
    }
    case K::kMap: {
      Value m = Value::Map();
      for (uint64_t i = 0; i < it.count; ++i) {
        internal::MsgpackItem k = r.Next();
        if (k.kind != K::kStr && k.kind != K::kBin) r.Fail("map key is not a string");
        m.Set(std::string(k.bytes), Decode(r, depth + 1));
      }
      return m;
    }
  }
  r.Fail("unknown item");
}

}  // namespace

std::string EncodeMsgpack(const Value& v) {
  MsgpackWriter w;
  Encode(v, w);
  return w.Take();
}

Value DecodeMsgpack(std::string_view bytes) {
  internal::MsgpackReader r(bytes);
  Value v = Decode(r, 0);
  if (r.remaining()) r.Fail(std::to_string(r.remaining()) + " trailing bytes");
  return v;
}

std::string Lz4FrameCompress(std::string_view raw) {
  // One compression context and output buffer per thread, reused: creating a
  // context per record (what LZ4F_compressFrame does, with a 16 KiB state
  // memset) cost more than compressing a small txt_db record. The preferences
  // are the ones LZ4F_compressFrame derives, so the frame is byte-identical.
  // Records over one 64 KiB block take LZ4F_compressFrame itself.
  struct Ctx {
    LZ4F_cctx* cctx = nullptr;
    std::string buf;
    Ctx() {
      if (LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION))) cctx = nullptr;
    }
    ~Ctx() { LZ4F_freeCompressionContext(cctx); }
  };
  LZ4F_preferences_t prefs;
  std::memset(&prefs, 0, sizeof(prefs));
  // Python's lz4.frame.compress defaults: content size stored, 64 KiB blocks, level 0.
  prefs.frameInfo.contentSize = raw.size();
  if (raw.size() > (size_t{64} << 10)) {
    // Several linked blocks: LZ4F_compressFrame (its block linking differs
    // from a streamed context's, and the setup cost does not matter here).
    std::string out(LZ4F_compressFrameBound(raw.size(), &prefs), '\0');
    const size_t n = LZ4F_compressFrame(out.data(), out.size(), raw.data(), raw.size(), &prefs);
    if (LZ4F_isError(n)) throw FormatError(std::string("lz4 compression failed: ") + LZ4F_getErrorName(n));
    out.resize(n);
    return out;
  }
  thread_local Ctx ctx;
  if (!ctx.cctx) throw FormatError("lz4: cannot create a compression context");
  // One block: what LZ4F_compressFrame sets for it.
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.autoFlush = 1;
  const size_t bound = LZ4F_compressFrameBound(raw.size(), &prefs);
  if (ctx.buf.size() < bound) ctx.buf.resize(bound);
  char* dst = ctx.buf.data();
  auto check = [](size_t n) {
    if (LZ4F_isError(n)) throw FormatError(std::string("lz4 compression failed: ") + LZ4F_getErrorName(n));
    return n;
  };
  LZ4F_compressOptions_t opts;
  std::memset(&opts, 0, sizeof(opts));
  opts.stableSrc = 1;
  size_t n = check(LZ4F_compressBegin(ctx.cctx, dst, bound, &prefs));
  n += check(LZ4F_compressUpdate(ctx.cctx, dst + n, bound - n, raw.data(), raw.size(), &opts));
  n += check(LZ4F_compressEnd(ctx.cctx, dst + n, bound - n, &opts));
  return std::string(dst, n);
}

std::string Lz4FrameDecompress(std::string_view frame) {
  LZ4F_dctx* dctx = nullptr;
  size_t rc = LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION);
  if (LZ4F_isError(rc)) throw FormatError("lz4: cannot create a decompression context");
  struct Free {
    LZ4F_dctx* d;
    ~Free() { LZ4F_freeDecompressionContext(d); }
  } free_ctx{dctx};
  if (frame.size() < 7) throw FormatError("lz4 frame truncated (" + std::to_string(frame.size()) + " bytes)");
  std::string out;
  size_t src_pos = 0;
  // The header tells the content size when the writer stored it (Python does).
  LZ4F_frameInfo_t info;
  size_t consumed = frame.size();
  rc = LZ4F_getFrameInfo(dctx, &info, frame.data(), &consumed);
  if (LZ4F_isError(rc)) throw FormatError(std::string("not an lz4 frame: ") + LZ4F_getErrorName(rc));
  src_pos = consumed;
  const size_t kMaxOut = size_t{1} << 31;
  if (info.contentSize && info.contentSize < kMaxOut) out.reserve(info.contentSize);
  char buf[1 << 16];
  while (src_pos < frame.size()) {
    size_t dst_size = sizeof(buf);
    size_t src_size = frame.size() - src_pos;
    rc = LZ4F_decompress(dctx, buf, &dst_size, frame.data() + src_pos, &src_size, nullptr);
    if (LZ4F_isError(rc)) throw FormatError(std::string("corrupt lz4 frame: ") + LZ4F_getErrorName(rc));
    out.append(buf, dst_size);
    if (out.size() > kMaxOut) throw FormatError("lz4 frame expands beyond 2 GiB");
    src_pos += src_size;
    if (rc == 0) {
      // End of one frame; another may follow (lz4.frame.decompress reads the first only; we accept more).
      if (src_pos < frame.size()) LZ4F_resetDecompressionContext(dctx);
      continue;
    }
    if (src_size == 0 && dst_size == 0) break;
  }
  if (rc != 0) throw FormatError("lz4 frame truncated");
  return out;
}

}  // namespace uniter::featdb
