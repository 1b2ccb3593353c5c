// JSON text exactly as Python's json.dumps writes it, for the sidecars and
// keys UNITER's Python code reads back byte for byte (img_db `__keys__`,
// nbb_*.json, id2len.json, txt2img.json, ...).
//
// Strings follow json.dumps(s, ensure_ascii=...):
//   - ensure_ascii=true (the default of json.dump/dumps): '"' and '\\' and
//     \n \r \t \b \f get their short escapes, every other character outside
//     ' '..'~' (all C0 controls, DEL, all non-ASCII) becomes \uXXXX (lower-case
//     hex), characters above the BMP a surrogate pair;
//   - ensure_ascii=false: only '"', '\\' and C0 controls are escaped; DEL and
//     non-ASCII are written as they are.
// Our strings are bytes. Ill-formed UTF-8 is read the way Python reads the
// same bytes as a file name (os.listdir / os.fsdecode: errors="surrogateescape"),
// which is where UNITER's scripts (convert_imgdir.py) get such keys from: each
// byte of an ill-formed subpart is the lone surrogate U+DC00+byte, so with
// ensure_ascii it is written \udcXX and Python's json.loads + os.fsencode gives
// the original bytes back. Without ensure_ascii the bytes are copied as they
// are (what Python writes when it encodes the output with surrogateescape).
// Our writers never meet this rule today: JSON inputs are validated by their
// parser, pickled strings are decoded by common/pickle_reader.h, and img_db
// refuses keys that are not UTF-8 (UNITER reads records by fname.encode('utf-8')).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace uniter {

// Appends `s` as json.dumps(s, ensure_ascii=ensure_ascii) writes it.
void AppendPyJsonString(std::string* out, std::string_view s, bool ensure_ascii = true);

// json.dumps(items): '["a", "b"]'.
std::string PyJsonList(const std::vector<std::string>& items);
// json.dumps(dict(items)) with unique keys in insertion order: '{"a": 1, "b": 2}'.
std::string PyJsonIntMap(const std::vector<std::pair<std::string, int64_t>>& items);

}  // namespace uniter
