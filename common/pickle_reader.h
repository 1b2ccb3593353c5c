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
  // kGlobal, kObject and kPersistentId occur only when PickleLimits allows
  // them (torch checkpoints); see there.
  enum class Kind { kNone, kBool, kInt, kFloat, kStr, kBytes, kList, kTuple, kDict,
                    kGlobal, kObject, kPersistentId };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                    // kStr (UTF-8), kBytes; kGlobal/kObject: "module.name"
  std::vector<PyValue> items;                       // kList, kTuple; kObject: call args; kPersistentId: [pid]
  std::vector<PyValue> state;                       // kObject: [BUILD state] or empty
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
  // Globals ("module.name") the pickle may name; empty = none (plain data
  // only). Naming one yields kGlobal; REDUCE of an allowed global yields
  // kObject {name, args} (nothing is called; collections.OrderedDict() yields
  // an empty kDict); BUILD is accepted only on such objects and dicts (a
  // dict's state is dropped: it only sets attributes such as _metadata).
  std::vector<std::string> allowed_globals;
  // BINPERSID yields kPersistentId {pid} (torch's storage references); PERSID
  // stays refused. Default: false.
  bool allow_persistent_ids = false;
};

// Parses a whole pickle. `where` names the input in error messages.
// Throws FormatError ("<where>: offset N: <reason>") on anything refused.
PyValue ParsePickle(std::string_view data, const std::string& where,
                    const PickleLimits& limits = {});

// Parses the one pickle that starts at `offset` in `data` (streams holding
// several pickles back to back, as torch's legacy checkpoints do) and sets
// `*end` to the offset just past its STOP opcode. Error offsets are offsets
// into `data`.
PyValue ParsePickleAt(std::string_view data, size_t offset, const std::string& where,
                      const PickleLimits& limits, size_t* end);

// Reads and parses a pickle file. Throws IoError if it cannot be read.
PyValue ReadPickleFile(const std::string& path, const PickleLimits& limits = {});

}  // namespace uniter
