// JSON text exactly as Python's json.dumps writes it with default arguments
// (", " and ": " separators, ensure_ascii), so `__keys__` and the nbb json
// match convert_imgdir.py byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace uniter::featdb::internal {

inline void PyJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  auto u = [&](uint32_t c) {
    out += "\\u";
    for (int sh = 12; sh >= 0; sh -= 4) out.push_back(kHex[(c >> sh) & 15]);
  };
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) u(c);
          else out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    // Decode one UTF-8 sequence (invalid bytes are escaped as themselves).
    int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    uint32_t cp = len == 4 ? c & 0x07 : len == 3 ? c & 0x0f : len == 2 ? c & 0x1f : c;
    if (i + len > s.size()) len = 1, cp = c;
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u(0xd800 + (cp >> 10));
      u(0xdc00 + (cp & 0x3ff));
    } else {
      u(cp);
    }
    i += len;
  }
  out.push_back('"');
}

inline std::string PyJsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    PyJsonString(out, items[i]);
  }
  return out + "]";
}

inline std::string PyJsonIntMap(const std::vector<std::pair<std::string, int>>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    PyJsonString(out, items[i].first);
    out += ": " + std::to_string(items[i].second);
  }
  return out + "}";
}

}  // namespace uniter::featdb::internal
