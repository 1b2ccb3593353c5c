#include "converters/internal/json_msgpack.h"

namespace uniter::converters {

namespace dom = simdjson::dom;

bool WriteJsonMsgpack(dom::element e, featdb::MsgpackWriter& w) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      const dom::object o(e);
      bool exact = true;
      w.MapHeader(o.size());
      for (auto i = o.begin(); i != o.end(); ++i) {
        // Objects are small, so a quadratic scan for repeats beats hashing.
        for (auto j = o.begin(); j != i; ++j)
          if (j.key() == i.key()) exact = false;
        w.Str(i.key());
        exact &= WriteJsonMsgpack(i.value(), w);
      }
      return exact;
    }
    case dom::element_type::ARRAY: {
      const dom::array a(e);
      bool exact = true;
      w.ArrayHeader(a.size());
      for (dom::element c : a) exact &= WriteJsonMsgpack(c, w);
      return exact;
    }
    case dom::element_type::INT64: w.Int(e.get_int64().value_unsafe()); return true;
    case dom::element_type::UINT64: w.UInt(e.get_uint64().value_unsafe()); return true;
    case dom::element_type::DOUBLE: w.Double(e.get_double().value_unsafe()); return true;
    case dom::element_type::STRING: w.Str(e.get_string().value_unsafe()); return true;
    case dom::element_type::BOOL: w.Bool(e.get_bool().value_unsafe()); return true;
    case dom::element_type::NULL_VALUE: w.Nil(); return true;
  }
  return true;
}

bool BeginRecordWithOriginal(dom::object o, std::initializer_list<std::string_view> added,
                             featdb::MsgpackWriter& w) {
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
    if (!WriteJsonMsgpack(i.value(), w)) return false;
  }
  return true;
}

std::string& MsgpackScratch() {
  thread_local std::string buf;
  buf.clear();
  return buf;
}

}  // namespace uniter::converters
