// A small, safe reader for Python pickles of plain data (protocols 0-5), such
// as RefCOCO's refs(unc).p written by Python 2.
//
// Safe means: only builtin containers and scalars are built (None, bool, int,
// float, str, bytes, list, tuple, dict; set/frozenset become lists). Every
// opcode that could name or call code (GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
// INST, OBJ, NEWOBJ, PERSID, EXT*) is refused with a FormatError, as are
// truncated input, nesting deeper than `max_depth`, shared references that
// would expand beyond `max_nodes`, and cycles.
//
// Python 2 `str` (STRING/BINSTRING/SHORT_BINSTRING) is decoded as UTF-8 when it
// is valid UTF-8, else as Latin-1 (what pickle.load(..., encoding='latin1')
// does), and yields kStr; Python 3 `bytes` yields kBytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace uniter {

// One Python value. Plain data: copyable, no sharing.
struct PyValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kStr, kBytes, kList, kTuple, kDict };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                    // kStr (UTF-8) and kBytes
  std::vector<PyValue> items;                       // kList, kTuple
  std::vector<PyValue> keys, values;                // kDict, insertion order (parallel lists)

  bool is_str() const { return kind == Kind::kStr; }
  bool is_int() const { return kind == Kind::kInt; }
  bool is_seq() const { return kind == Kind::kList || kind == Kind::kTuple; }
  // The value of dict key `key` (a str key), or nullptr.
  const PyValue* Find(std::string_view key) const;
  // "list", "dict", ...: for messages.
  const char* TypeName() const;
};

struct PickleLimits {
  // Containers nested deeper than this are refused. Default: 256.
  int max_depth = 256;
  // Values built in total (shared memo references count each time they are
  // used). Default: 0 = 16 * input size + 4096.
  uint64_t max_nodes = 0;
};

// Parses a whole pickle. `where` names the input in error messages.
// Throws FormatError ("<where>: offset N: <reason>") on anything refused.
PyValue ParsePickle(std::string_view data, const std::string& where,
                    const PickleLimits& limits = {});

// Reads and parses a pickle file. Throws IoError if it cannot be read.
PyValue ReadPickleFile(const std::string& path, const PickleLimits& limits = {});

}  // namespace uniter
