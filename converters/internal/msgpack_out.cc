#include "converters/internal/msgpack_out.h"

namespace uniter::converters {

namespace dom = simdjson::dom;

namespace {

// True when no object in `e` repeats a key. Objects are small (a record's
// fields), so a quadratic scan beats hashing.
bool KeysUnique(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      const dom::object o(e);
      for (auto i = o.begin(); i != o.end(); ++i) {
        for (auto j = o.begin(); j != i; ++j)
          if (j.key() == i.key()) return false;
        if (!KeysUnique(i.value())) return false;
      }
      return true;
    }
    case dom::element_type::ARRAY:
      for (dom::element c : dom::array(e))
        if (!KeysUnique(c)) return false;
      return true;
    default: return true;
  }
}

}  // namespace

void MsgpackOut::Json(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      const dom::object o(e);
      MapHeader(o.size());
      for (auto [k, v] : o) {
        Str(k);
        Json(v);
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
    for (auto j = o.begin(); j != i; ++j)
      if (j.key() == i.key()) return false;
    if (!KeysUnique(i.value())) return false;
  }
  w.MapHeader(n + added.size());
  for (auto [k, v] : o) {
    w.Str(k);
    w.Json(v);
  }
  return true;
}

std::string& MsgpackScratch() {
  thread_local std::string buf;
  buf.clear();
  return buf;
}

}  // namespace uniter::converters
