#include "converters/internal/msgpack_out.h"

namespace uniter::converters {

namespace dom = simdjson::dom;

void MsgpackOut::Json(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      const dom::object o(e);
      MapHeader(o.size());
      for (auto i = o.begin(); i != o.end(); ++i) {
        // A repeated key (Python keeps the last value, at the first
        // position) makes the bytes wrong; the caller checks exact().
        // Objects are small, so a quadratic scan beats hashing.
        for (auto j = o.begin(); j != i; ++j)
          if (j.key() == i.key()) exact_ = false;
        Str(i.key());
        Json(i.value());
      }
      return;
    }
    case dom::element_type::ARRAY: {
      const dom::array a(e);
      ArrayHeader(a.size());
      for (dom::element c : a) Json(c);
      return;
    }
    case dom::element_type::INT64: return Int(e.get_int64().value_unsafe());
    case dom::element_type::UINT64: return UInt(e.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE: return Double(e.get_double().value_unsafe());
    case dom::element_type::STRING: return Str(e.get_string().value_unsafe());
    case dom::element_type::BOOL: return Bool(e.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE: return Nil();
  }
}

bool BeginRecordWithOriginal(dom::object o, std::initializer_list<std::string_view> added, MsgpackOut& w) {
  size_t n = 0;
  for (auto i = o.begin(); i != o.end(); ++i, ++n) {
    for (std::string_view a : added)
      if (i.key() == a) return false;
  }
  w.MapHeader(n + added.size());
  for (auto i = o.begin(); i != o.end(); ++i) {
    for (auto j = o.begin(); j != i; ++j)
      if (j.key() == i.key()) return false;
    w.Str(i.key());
    w.Json(i.value());
  }
  return w.exact();
}

std::string& MsgpackScratch() {
  thread_local std::string buf;
  buf.clear();
  return buf;
}

}  // namespace uniter::converters
