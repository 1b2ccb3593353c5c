// UNITER's txt_db: an LMDB folder whose values are lz4-frame(msgpack(example))
// keyed by example id, plus JSON sidecars (meta.json, id2len.json,
// txt2img.json, img2txts.json, task sidecars).
//
// Typed accessors for the fields converters and the trainer share live in
// featdb/example.h.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "featdb/value.h"

namespace uniter::featdb {

class LmdbWriter;
class LmdbReader;

struct TxtDbWriterOptions {
  // Open an existing db and keep its records (Contains() tells what is there). Default: false.
  bool resume = false;
  // Delete an existing db first. Default: false.
  bool force = false;
  // Records per LMDB transaction. Default: 1000 (UNITER's TxtLmdb commits every 1000 too).
  size_t commit_every = 1000;
};

// One writer per db; not thread safe (converters call it from one ordered stage).
// Crash safe: everything committed survives a kill -9; pending records are lost.
class TxtDbWriter {
 public:
  // Creates `dir` (and parents). Throws uniter::UsageError if `dir` holds a db
  // and neither resume nor force is set (UNITER refuses too).
  TxtDbWriter(const std::string& dir, const TxtDbWriterOptions& options = {});
  ~TxtDbWriter();  // commits what is pending (errors are logged, not thrown)

  TxtDbWriter(const TxtDbWriter&) = delete;
  TxtDbWriter& operator=(const TxtDbWriter&) = delete;

  // Committed or pending.
  bool Contains(std::string_view key) const;
  // Stores lz4frame(msgpack(example)); replaces an existing value.
  void Put(std::string_view key, const Value& example);
  // Stores an already encoded value (an lz4 frame, e.g. copied by merge).
  void PutRaw(std::string_view key, std::string value);
  void Commit();
  // Sidecar `dir/name`, written atomically (tmp + rename).
  void WriteJson(const std::string& name, const nlohmann::json& j);
  // Existing sidecar (for --resume); null if absent. Throws FormatError if it does not parse.
  nlohmann::json ReadJson(const std::string& name) const;
  // Commit + close; further calls throw UsageError.
  void Close();

  const std::string& dir() const { return dir_; }

 private:
  void CheckOpen() const;

  std::string dir_;
  std::unique_ptr<LmdbWriter> db_;
};

// Thread safe for concurrent reads; works while another process writes the db.
class TxtDbReader {
 public:
  // Throws a clear FormatError for a folder that is not an LMDB db.
  explicit TxtDbReader(const std::string& dir);
  ~TxtDbReader();

  // nullopt when absent; FormatError naming the key when the value is corrupt.
  std::optional<Value> Get(std::string_view key) const;
  // The raw stored value (lz4 frame), nullopt when absent.
  std::optional<std::string> GetRaw(std::string_view key) const;
  // Every key, in LMDB (byte) order.
  std::vector<std::string> Keys() const;
  size_t size() const;
  // Sidecar `dir/name`; null if absent.
  nlohmann::json ReadJson(const std::string& name) const;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::unique_ptr<LmdbReader> db_;
};

// Reads a JSON file; null if absent; FormatError naming the file if it does not parse.
nlohmann::json ReadJsonFile(const std::string& path);
// Writes JSON atomically: `path.tmp` then rename.
void WriteJsonFile(const std::string& path, const nlohmann::json& j);

}  // namespace uniter::featdb
