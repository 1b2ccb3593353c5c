// Fast writers for the big JSON sidecars (id2len, txt2img, img2txts): keys in
// insertion order, written as Python's json.dump writes a dict (", " and ": "
// separators; strings by common/py_json.h), without building a DOM.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/py_json.h"

namespace uniter::converters {

class JsonObjectWriter {
 public:
  void Add(std::string_view key, int64_t value);
  void Add(std::string_view key, std::string_view value);
  void Add(std::string_view key, const std::vector<std::string>& values);
  // `json_key` and `json_value` are JSON text already (see AppendPyJsonString, common/py_json.h).
  void AddJson(std::string_view json_key, std::string_view json_value);
  void AddJson(std::string_view json_key, int64_t value);
  size_t size() const { return count_; }
  // The object's text; the writer is left empty.
  std::string Finish();

 private:
  void Key(std::string_view key);

  std::string out_;
  size_t count_ = 0;
};

}  // namespace uniter::converters
