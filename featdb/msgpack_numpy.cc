// msgpack-numpy records (featdb/codecs.h).
#include <algorithm>

#include "common/error.h"
#include "featdb/codecs.h"
#include "featdb/internal/msgpack_io.h"
#include "featdb/msgpack_writer.h"

namespace uniter::featdb {

using internal::MsgpackItem;
using internal::MsgpackReader;

std::string EncodeMsgpackNumpy(const std::vector<Array>& arrays) {
  MsgpackWriter w;
  size_t total = 64;
  for (const Array& a : arrays) total += a.data.size() + a.name.size() + 64;
  w.Reserve(total);
  w.MapHeader(arrays.size());
  for (const Array& a : arrays) {
    w.Str(a.name);
    w.MapHeader(5);
    w.Bin("nd");
    w.Bool(true);
    w.Bin("type");
    w.Str(DTypeDescr(a.dtype));
    w.Bin("kind");
    w.Bin("");
    w.Bin("shape");
    w.ArrayHeader(a.shape.size());
    for (int64_t d : a.shape) w.Int(d);
    w.Bin("data");
    w.Bin(a.data);
  }
  return w.Take();
}

namespace {

using K = MsgpackItem::Kind;

std::string_view Text(MsgpackReader& r, const MsgpackItem& it, const char* what) {
  if (it.kind != K::kStr && it.kind != K::kBin) r.Fail(std::string(what) + " is not a string");
  return it.bytes;
}

Array DecodeOne(MsgpackReader& r, std::string name) {
  MsgpackItem m = r.Next();
  if (m.kind != K::kMap) r.Fail("value of '" + name + "' is not a msgpack-numpy array");
  Array a;
  a.name = std::move(name);
  bool has_nd = false, nd = false, has_type = false, has_shape = false, has_data = false;
  for (uint64_t i = 0; i < m.count; ++i) {
    const std::string_view key = Text(r, r.Next(), "array field name");
    if (key == "nd") {
      MsgpackItem v = r.Next();
      if (v.kind != K::kBool) r.Fail("'nd' is not a bool");
      has_nd = true;
      nd = v.b;
    } else if (key == "type") {
      MsgpackItem v = r.Next();
      if (v.kind == K::kArray) r.Fail("structured dtypes are not supported (array '" + a.name + "')");
      a.dtype = DTypeFromDescr(Text(r, v, "'type'"));
      has_type = true;
    } else if (key == "kind") {
      MsgpackItem v = r.Next();
      const std::string_view kind = Text(r, v, "'kind'");
      if (!kind.empty()) r.Fail("array kind '" + std::string(kind) + "' (structured/object) is not supported");
    } else if (key == "shape") {
      MsgpackItem v = r.Next();
      if (v.kind != K::kArray) r.Fail("'shape' is not a list");
      if (v.count > 32) r.Fail("more than 32 dimensions");
      for (uint64_t d = 0; d < v.count; ++d) {
        MsgpackItem x = r.Next();
        if (x.kind != K::kUInt || x.u > (uint64_t{1} << 40)) r.Fail("bad dimension in 'shape'");
        a.shape.push_back(static_cast<int64_t>(x.u));
      }
      has_shape = true;
    } else if (key == "data") {
      MsgpackItem v = r.Next();
      a.data.assign(Text(r, v, "'data'"));
      has_data = true;
    } else {
      r.Skip();
    }
  }
  if (!has_nd || !has_type || !has_data) r.Fail("'" + a.name + "' lacks nd/type/data: not a msgpack-numpy array");
  if (nd && !has_shape) r.Fail("'" + a.name + "' lacks its shape");
  if (!nd) a.shape.clear();  // a numpy scalar
  a.Validate("msgpack-numpy");
  return a;
}

}  // namespace

std::vector<Array> DecodeMsgpackNumpy(std::string_view bytes, const std::vector<std::string>& only) {
  MsgpackReader r(bytes);
  MsgpackItem top = r.Next();
  if (top.kind != K::kMap) r.Fail("image record is not a map");
  std::vector<Array> out;
  for (uint64_t i = 0; i < top.count; ++i) {
    std::string name(Text(r, r.Next(), "array name"));
    if (!only.empty() && std::find(only.begin(), only.end(), name) == only.end()) {
      r.Skip();
      continue;
    }
    out.push_back(DecodeOne(r, std::move(name)));
  }
  if (r.remaining()) r.Fail("trailing bytes after the record");
  return out;
}

}  // namespace uniter::featdb
