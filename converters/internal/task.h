// The interface every converter implements, and what the engine hands it.
#pragma once

#include <simdjson.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "converters/convert.h"
#include "featdb/value.h"

namespace uniter {
class RejectsFile;
}
namespace uniter::featdb {
class TxtDbWriter;
}
namespace uniter::tokenizer {
class Tokenizer;
}

namespace uniter::converters {

// One input record, as the task's Next() found it. A task uses the parts it
// needs: a line of text (JSON lines, TSV) or an element of a parsed JSON
// document, or an index into data it loaded itself.
struct Unit {
  uint32_t file = 0;  // index into ConvertOptions::annotations
  long line = 0;      // 1-based line, 0 when not line based
  std::string text;
  simdjson::dom::element elem;
  size_t index = 0;
};

// One txt_db record and its sidecar entries.
struct Example {
  std::string db;  // output db name under --output ("" = --output itself)
  std::string key;
  featdb::Value value;
  // Length sidecars: {"id2len", n} (VCR: id2len_qa, id2len_qar).
  std::vector<std::pair<std::string, int64_t>> lens;
  // txt2img: one name (a JSON string) or several (a JSON list, img_list).
  std::vector<std::string> img_fnames;
  bool img_list = false;
  // lz4frame(msgpack(value)): filled by the engine's parallel stage, unless the
  // task already wrote it (then `value` is ignored).
  std::string encoded;
  // Filled by the engine's parallel stage for its serial writer: the key and
  // the txt2img value as JSON text, and the hashes of the key and img_fnames.
  std::string json_key;
  std::string json_img;
  size_t key_hash = 0;
  std::vector<size_t> img_hashes;
};

struct TaskContext {
  const ConvertOptions* options = nullptr;
  const tokenizer::Tokenizer* toker = nullptr;

  // Task flag value, or `fallback` when not given.
  std::string Flag(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> FlagList(const std::string& name) const;
  const std::string& Annotation(size_t i) const { return options->annotations.at(i); }
};

// Lifecycle: Prepare (serial) → Next/Convert (Next serial, Convert concurrent
// from several threads on distinct units) → Finish per db.
class Task {
 public:
  virtual ~Task() = default;

  // Reads side inputs and checks options. Throws UsageError / FormatError / IoError.
  virtual void Prepare(const TaskContext& ctx) = 0;
  // The dbs this run writes (names under --output; "" = --output itself).
  // Called after Prepare.
  virtual std::vector<std::string> Dbs() const { return {""}; }
  // Next input unit, in input order; false at the end. Serial.
  virtual bool Next(Unit* unit) = 0;
  // Unit → zero or more examples. Thread safe (const). A bad record throws
  // uniter::Error whose where() is the record key, if known; it becomes a reject.
  virtual void Convert(const Unit& unit, std::vector<Example>* out) const = 0;
  // Task options recorded in meta.json under "options".
  virtual nlohmann::json MetaOptions(const std::string& db) const { return nlohmann::json::object(); }
  // Whether img2txts.json is written.
  virtual bool WritesImg2Txts() const { return true; }
  // Whether id2len.json/txt2img.json are written from Example::lens / img_fnames.
  virtual bool WritesTxt2Img() const { return true; }
  // Task sidecars for `db`, after all examples. `kept` = keys written or kept.
  virtual void Finish(const std::string& db, featdb::TxtDbWriter& writer, RejectsFile& rejects) {}

 protected:
  const TaskContext* ctx_ = nullptr;
};

#define UNITER_CONVERTER(Name, name) \
  std::unique_ptr<Task> Make##Name##Task();  \
  TaskInfo Name##TaskInfo();
#include "converters/converter_list.inc"
#undef UNITER_CONVERTER

}  // namespace uniter::converters
