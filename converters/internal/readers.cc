#include "converters/internal/readers.h"

#include <charconv>
#include <cinttypes>
#include <cstring>

#include "common/error.h"

namespace uniter::converters {

namespace dom = simdjson::dom;

LineReader::LineReader(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) ThrowErrno("cannot open", path);
}

LineReader::~LineReader() {
  if (f_) std::fclose(f_);
}

bool LineReader::Next(std::string* line, long* number) {
  constexpr size_t kBlock = 1 << 20;
  while (true) {
    const size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos || (eof_ && pos_ < buf_.size())) {
      const size_t end = nl == std::string::npos ? buf_.size() : nl;
      size_t len = end - pos_;
      if (len > 0 && buf_[pos_ + len - 1] == '\r') --len;
      line->assign(buf_, pos_, len);
      pos_ = nl == std::string::npos ? buf_.size() : nl + 1;
      *number = ++line_;
      return true;
    }
    if (eof_) return false;
    buf_.erase(0, pos_);
    pos_ = 0;
    const size_t old = buf_.size();
    buf_.resize(old + kBlock);
    const size_t n = std::fread(buf_.data() + old, 1, kBlock, f_);
    buf_.resize(old + n);
    if (n < kBlock) {
      if (std::ferror(f_)) ThrowErrno("read failed", path_);
      eof_ = true;
    }
  }
}

std::vector<std::string_view> SplitTabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t t = line.find('\t', start);
    if (t == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, t - start));
    start = t + 1;
  }
}

JsonDocument LoadJsonDocument(const std::string& path) {
  JsonDocument doc;
  doc.parser = std::make_unique<dom::parser>();
  simdjson::padded_string text;
  auto err = simdjson::padded_string::load(path).get(text);
  if (err) {
    if (err == simdjson::IO_ERROR) ThrowErrno("cannot read", path);
    throw IoError(simdjson::error_message(err), path);
  }
  err = doc.parser->parse(text).get(doc.root);
  if (err) throw FormatError(std::string("malformed JSON: ") + simdjson::error_message(err), path);
  return doc;
}

dom::element ParseJsonThreadLocal(std::string_view text) {
  thread_local dom::parser parser;
  dom::element e;
  const auto err = parser.parse(text.data(), text.size(), true).get(e);
  if (err) throw FormatError(std::string("malformed JSON: ") + simdjson::error_message(err));
  return e;
}

featdb::Value ToValue(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: return ObjectToMap(dom::object(e));
    case dom::element_type::ARRAY: {
      featdb::Value a = featdb::Value::Array();
      const dom::array arr(e);
      for (dom::element c : arr) a.Append(ToValue(c));
      return a;
    }
    case dom::element_type::INT64: return featdb::Value(e.get_int64().value_unsafe());
    case dom::element_type::UINT64: return featdb::Value(e.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE: return featdb::Value(e.get_double().value_unsafe());
    case dom::element_type::STRING: return featdb::Value::Str(std::string(e.get_string().value_unsafe()));
    case dom::element_type::BOOL: return featdb::Value(e.get_bool().value_unsafe());
    case dom::element_type::NULL_VALUE: return featdb::Value();
  }
  return featdb::Value();
}

nlohmann::json ToJson(dom::element e) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      nlohmann::json o = nlohmann::json::object();
      const dom::object obj(e);
      for (auto [k, v] : obj) o[std::string(k)] = ToJson(v);
      return o;
    }
    case dom::element_type::ARRAY: {
      nlohmann::json a = nlohmann::json::array();
      const dom::array arr(e);
      for (dom::element c : arr) a.push_back(ToJson(c));
      return a;
    }
    case dom::element_type::INT64: return e.get_int64().value_unsafe();
    case dom::element_type::UINT64: return e.get_uint64().value_unsafe();
    case dom::element_type::DOUBLE: return e.get_double().value_unsafe();
    case dom::element_type::STRING: return std::string(e.get_string().value_unsafe());
    case dom::element_type::BOOL: return e.get_bool().value_unsafe();
    case dom::element_type::NULL_VALUE: return nullptr;
  }
  return nullptr;
}

featdb::Value ObjectToMap(dom::object o) {
  featdb::Value m = featdb::Value::Map();
  for (auto [k, v] : o) m.Set(std::string(k), ToValue(v));
  return m;
}

dom::object AsObject(dom::element e, std::string_view what) {
  dom::object o;
  if (e.get_object().get(o)) throw FormatError(std::string(what) + " is not a JSON object");
  return o;
}

dom::array AsArray(dom::element e, std::string_view what) {
  dom::array a;
  if (e.get_array().get(a)) throw FormatError(std::string(what) + " is not a JSON list");
  return a;
}

bool Has(dom::object o, std::string_view key) {
  dom::element e;
  return !o.at_key(key).get(e);
}

dom::element Field(dom::object o, std::string_view key) {
  dom::element e;
  if (o.at_key(key).get(e)) throw FormatError("missing field '" + std::string(key) + "'");
  return e;
}

std::string_view StrField(dom::object o, std::string_view key) {
  std::string_view s;
  if (Field(o, key).get_string().get(s)) throw FormatError("field '" + std::string(key) + "' is not a string");
  return s;
}

int64_t IntField(dom::object o, std::string_view key) {
  return IntOrIntString(Field(o, key), "field '" + std::string(key) + "'");
}

dom::array ArrayField(dom::object o, std::string_view key) {
  return AsArray(Field(o, key), "field '" + std::string(key) + "'");
}

int64_t IntOrIntString(dom::element e, std::string_view what) {
  int64_t v;
  if (!e.get_int64().get(v)) return v;
  std::string_view s;
  if (!e.get_string().get(s)) return ParseInt(s, what);
  throw FormatError(std::string(what) + " is not an integer");
}

int64_t ParseInt(std::string_view s, std::string_view what) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || p != end)
    throw FormatError(std::string(what) + " '" + std::string(s) + "' is not an integer");
  return v;
}

std::string Pad12(int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012" PRId64, id);
  return buf;
}

std::vector<std::string> ReadNameList(const std::string& path) {
  JsonDocument doc = LoadJsonDocument(path);
  dom::array a;
  if (doc.root.get_array().get(a)) throw FormatError("expected a JSON list of file names", path);
  std::vector<std::string> names;
  for (dom::element e : a) {
    std::string_view s;
    if (e.get_string().get(s)) throw FormatError("expected a JSON list of file names", path);
    names.emplace_back(s);
  }
  return names;
}

}  // namespace uniter::converters
