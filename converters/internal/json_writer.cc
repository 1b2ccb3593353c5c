#include "converters/internal/json_writer.h"

#include <cstdio>

#include "common/error.h"

namespace uniter::converters {

void AppendJsonString(std::string* out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  auto u = [&](uint32_t c) {
    out->append("\\u");
    for (int sh = 12; sh >= 0; sh -= 4) out->push_back(kHex[(c >> sh) & 15]);
  };
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    // Fast path: the run of plain ASCII up to the next character to escape.
    size_t j = i;
    while (j < s.size() && static_cast<unsigned char>(s[j]) >= 0x20 && static_cast<unsigned char>(s[j]) < 0x7f &&
           s[j] != '"' && s[j] != '\\')
      ++j;
    if (j > i) {
      out->append(s.data() + i, j - i);
      i = j;
      if (i == s.size()) break;
    }
    const unsigned char c = s[i];
    if (c == '"') out->append("\\\"");
    else if (c == '\\') out->append("\\\\");
    else if (c == '\n') out->append("\\n");
    else if (c == '\r') out->append("\\r");
    else if (c == '\t') out->append("\\t");
    else if (c == '\b') out->append("\\b");
    else if (c == '\f') out->append("\\f");
    else if (c < 0x20 || c == 0x7f) u(c);  // json.dumps escapes all but ' '..'~'
    else if (c < 0x80) out->push_back(static_cast<char>(c));
    else {
      // Decode one UTF-8 sequence; ill-formed bytes become U+FFFD.
      int n = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
      uint32_t cp = n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
      bool ok = n > 0;
      for (int k = 1; ok && k <= n; ++k) {
        if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) ok = false;
        else cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      }
      if (!ok) {
        u(0xFFFD);
        continue;
      }
      i += n;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        u(0xD800 + (cp >> 10));
        u(0xDC00 + (cp & 0x3FF));
      } else {
        u(cp);
      }
    }
  }
  out->push_back('"');
}

void JsonObjectWriter::Key(std::string_view key) {
  out_.append(count_++ ? ", " : "{");
  AppendJsonString(&out_, key);
  out_.append(": ");
}

void JsonObjectWriter::Add(std::string_view key, int64_t value) {
  Key(key);
  out_.append(std::to_string(value));
}

void JsonObjectWriter::Add(std::string_view key, std::string_view value) {
  Key(key);
  AppendJsonString(&out_, value);
}

void JsonObjectWriter::Add(std::string_view key, const std::vector<std::string>& values) {
  Key(key);
  out_.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out_.append(", ");
    AppendJsonString(&out_, values[i]);
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

void WriteFileAtomic(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) ThrowErrno("cannot write", tmp);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) ThrowErrno("cannot write", tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) ThrowErrno("cannot rename to " + path, tmp);
}

}  // namespace uniter::converters
