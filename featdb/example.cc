#include "featdb/example.h"

#include "common/error.h"

namespace uniter::featdb {
namespace {

// Re-throws with the field named, so "expected int" says which field.
template <typename F>
auto WithField(const std::string& field, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const FormatError& e) {
    throw FormatError("field '" + field + "': " + e.message());
  }
}

}  // namespace

std::vector<int32_t> InputIds(const Value& example) {
  return WithField("input_ids", [&] { return example.at("input_ids").AsIntList(); });
}

std::vector<std::string> ImgFnames(const Value& example) {
  return WithField("img_fname", [&] {
    const Value& v = example.at("img_fname");
    std::vector<std::string> out;
    if (v.type() == Value::Type::kStr) {
      out.push_back(v.as_str());
    } else {
      for (const Value& x : v.as_array()) out.push_back(x.as_str());
    }
    return out;
  });
}

int64_t IntField(const Value& example, const std::string& field) {
  return WithField(field, [&] { return example.at(field).as_int(); });
}

SoftTarget SoftTargetField(const Value& example, const std::string& field) {
  return WithField(field, [&] {
    const Value& t = example.at(field);
    SoftTarget out;
    out.labels = t.at("labels").AsIntList();
    for (const Value& s : t.at("scores").as_array()) out.scores.push_back(static_cast<float>(s.as_double()));
    if (out.labels.size() != out.scores.size()) throw FormatError("labels and scores differ in length");
    return out;
  });
}

std::vector<std::vector<int32_t>> IntListList(const Value& example, const std::string& field) {
  return WithField(field, [&] {
    std::vector<std::vector<int32_t>> out;
    for (const Value& x : example.at(field).as_array()) out.push_back(x.AsIntList());
    return out;
  });
}

}  // namespace uniter::featdb
