#include "common/py_json.h"

#include "common/utf8.h"

namespace uniter {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendU(std::string* out, uint32_t c) {
  const char b[6] = {'\\', 'u', kHex[(c >> 12) & 15], kHex[(c >> 8) & 15], kHex[(c >> 4) & 15], kHex[c & 15]};
  out->append(b, 6);
}

// Appends the escape of ASCII byte c when json.dumps escapes it; false if not.
bool AppendAsciiEscape(std::string* out, unsigned char c, bool ensure_ascii) {
  switch (c) {
    case '"': out->append("\\\""); return true;
    case '\\': out->append("\\\\"); return true;
    case '\n': out->append("\\n"); return true;
    case '\r': out->append("\\r"); return true;
    case '\t': out->append("\\t"); return true;
    case '\b': out->append("\\b"); return true;
    case '\f': out->append("\\f"); return true;
    default: break;
  }
  if (c < 0x20 || (c == 0x7f && ensure_ascii)) {
    AppendU(out, c);
    return true;
  }
  return false;
}

}  // namespace

void AppendPyJsonString(std::string* out, std::string_view s, bool ensure_ascii) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Fast path: the run of bytes written as they are.
    size_t j = i;
    while (j < s.size()) {
      const auto c = static_cast<unsigned char>(s[j]);
      if (c < 0x20 || c == '"' || c == '\\' || (ensure_ascii && c >= 0x7f) || (!ensure_ascii && c == 0x7f)) break;
      ++j;
    }
    out->append(s.data() + i, j - i);
    i = j;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (!AppendAsciiEscape(out, c, ensure_ascii)) out->push_back(static_cast<char>(c));  // DEL, ensure_ascii off
      ++i;
      continue;
    }
    size_t len = 0;
    char32_t cp = DecodeUtf8(s, i, &len);
    if (cp == kReplacementChar && IsIllFormedAt(s, i, len)) {
      // Ill-formed: U+DC00+byte for each byte of the subpart (surrogateescape).
      for (size_t k = 0; k < len; ++k) AppendU(out, 0xDC00 + static_cast<unsigned char>(s[i + k]));
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      AppendU(out, 0xD800 + (cp >> 10));
      AppendU(out, 0xDC00 + (cp & 0x3FF));
    } else {
      AppendU(out, cp);
    }
    i += len;
  }
  out->push_back('"');
}

std::string PyJsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    AppendPyJsonString(&out, items[i]);
  }
  return out + "]";
}

std::string PyJsonIntMap(const std::vector<std::pair<std::string, int64_t>>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    AppendPyJsonString(&out, items[i].first);
    out += ": " + std::to_string(items[i].second);
  }
  return out + "}";
}

}  // namespace uniter
