// Input readers shared by the converters: a streaming line reader (JSON lines,
// TSV), whole JSON documents (simdjson), and typed field access that turns a
// missing or mistyped field into a FormatError naming it.
#pragma once

#include <simdjson.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "featdb/value.h"

namespace uniter::converters {

// Reads a text file line by line in large blocks; strips "\n" and "\r\n".
// Not thread safe.
class LineReader {
 public:
  explicit LineReader(const std::string& path);  // throws IoError
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line (without its terminator) and its 1-based number; false at EOF.
  bool Next(std::string* line, long* number);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  long line_ = 0;
};

// Splits on '\t' (no quoting, like Python's line.split('\t')).
std::vector<std::string_view> SplitTabs(std::string_view line);

// A parsed JSON document: the parser owns the elements, so keep this alive
// while they are used. Concurrent reads of the elements are safe.
struct JsonDocument {
  std::unique_ptr<simdjson::dom::parser> parser;
  simdjson::dom::element root;
};
// Parses a whole JSON file. Throws IoError / FormatError naming the file.
JsonDocument LoadJsonDocument(const std::string& path);

// Parses one JSON text (e.g. a line) with a per-thread parser. The element is
// valid until the same thread parses again. Throws FormatError("malformed JSON: ...").
simdjson::dom::element ParseJsonThreadLocal(std::string_view text);

// Python's json.loads types as msgpack values: int, float, str, list, dict
// (insertion order kept), true/false, null.
featdb::Value ToValue(simdjson::dom::element e);
nlohmann::json ToJson(simdjson::dom::element e);

// Field access on a JSON object; throw FormatError "missing field 'x'" or
// "field 'x' is not a string" (where = "").
simdjson::dom::object AsObject(simdjson::dom::element e, std::string_view what = "record");
simdjson::dom::array AsArray(simdjson::dom::element e, std::string_view what);
bool Has(simdjson::dom::object o, std::string_view key);
simdjson::dom::element Field(simdjson::dom::object o, std::string_view key);
std::string_view StrField(simdjson::dom::object o, std::string_view key);
int64_t IntField(simdjson::dom::object o, std::string_view key);
simdjson::dom::array ArrayField(simdjson::dom::object o, std::string_view key);
// An int, or a string holding a decimal int ("123").
int64_t IntOrIntString(simdjson::dom::element e, std::string_view what);
// A whole string of decimal digits, optionally signed, that fits int64;
// else FormatError "<what> '<s>' is not an integer".
int64_t ParseInt(std::string_view s, std::string_view what);

// Copies every field of `o` into a msgpack map (the "keep the original fields" of UNITER's prepro).
featdb::Value ObjectToMap(simdjson::dom::object o);

// "%012lld"-style zero padding, as Python's f'{id:012}'.
std::string Pad12(int64_t id);

// Reads --missing-imgs: a JSON list of names. Throws FormatError naming the file.
std::vector<std::string> ReadNameList(const std::string& path);

}  // namespace uniter::converters
