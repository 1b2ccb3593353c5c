#include "converters/internal/json_writer.h"

#include <cstdio>

#include "common/error.h"
#include "common/py_json.h"

namespace uniter::converters {

void JsonObjectWriter::Key(std::string_view key) {
  out_.append(count_++ ? ", " : "{");
  AppendPyJsonString(&out_, key);
  out_.append(": ");
}

void JsonObjectWriter::Add(std::string_view key, int64_t value) {
  Key(key);
  out_.append(std::to_string(value));
}

void JsonObjectWriter::Add(std::string_view key, std::string_view value) {
  Key(key);
  AppendPyJsonString(&out_, value);
}

void JsonObjectWriter::Add(std::string_view key, const std::vector<std::string>& values) {
  Key(key);
  out_.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out_.append(", ");
    AppendPyJsonString(&out_, values[i]);
  }
  out_.push_back(']');
}

void JsonObjectWriter::AddJson(std::string_view json_key, std::string_view json_value) {
  out_.append(count_++ ? ", " : "{");
  out_.append(json_key);
  out_.append(": ");
  out_.append(json_value);
}

void JsonObjectWriter::AddJson(std::string_view json_key, int64_t value) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(value));
  AddJson(json_key, std::string_view(buf, static_cast<size_t>(n)));
}

std::string JsonObjectWriter::Finish() {
  std::string s = count_ ? std::move(out_) + "}" : "{}";
  out_.clear();
  count_ = 0;
  return s;
}

}  // namespace uniter::converters
