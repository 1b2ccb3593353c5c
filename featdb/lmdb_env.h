// The LMDB layer every featdb database sits on: RAII environment, a batched
// crash-safe writer that grows the map on MDB_MAP_FULL, and a thread-safe
// reader that copes with a concurrent writer growing the map.
//
// The LMDB layout is the one Python's `lmdb.open(dir)` uses (subdir mode:
// `dir/data.mdb`, `dir/lock.mdb`, unnamed main db), so UNITER reads ours and we read its.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace uniter::featdb {

// Throws IoError "<where>: <what>: <mdb_strerror>" (ENOSPC: "disk full").
[[noreturn]] void ThrowLmdb(int rc, const std::string& what, const std::string& where);

// True when `dir` holds an LMDB environment (a data.mdb file).
bool IsLmdbDir(const std::string& dir);

// Owns an MDB_env (and its unnamed main MDB_dbi). Not copyable.
class LmdbEnv {
 public:
  // readonly: MDB_RDONLY, the folder must hold a db (FormatError otherwise).
  // Else creates the folder and the db. `map_size` 0 = grow as needed from 64 MiB.
  LmdbEnv(const std::string& dir, bool readonly, size_t map_size = 0);
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  MDB_env* env() const { return env_; }
  MDB_dbi dbi() const { return dbi_; }
  const std::string& dir() const { return dir_; }
  bool readonly() const { return readonly_; }
  size_t map_size() const;
  // Doubles the map (at least `min_extra` more); REQUIRES: no transaction of this env is open.
  void Grow(size_t min_extra);

 private:
  std::string dir_;
  bool readonly_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
};

// A read transaction (MDB_RDONLY), aborted on destruction. Retries once after
// MDB_MAP_RESIZED (another process grew the map).
class LmdbReadTxn {
 public:
  explicit LmdbReadTxn(const LmdbEnv& env);
  ~LmdbReadTxn();
  LmdbReadTxn(const LmdbReadTxn&) = delete;
  LmdbReadTxn& operator=(const LmdbReadTxn&) = delete;

  // A view valid while this txn lives; nullopt when absent.
  std::optional<std::string_view> Get(std::string_view key) const;
  // Visits every (key, value) in key order until `fn` returns false.
  void ForEach(const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  size_t Count() const;

 private:
  const LmdbEnv& env_;
  MDB_txn* txn_ = nullptr;
};

// Batched writer: Put() queues, Commit() writes the queue in one transaction
// (regrowing the map and retrying on MDB_MAP_FULL), automatically when
// `commit_every` records or `commit_bytes` bytes are pending. Not thread safe.
class LmdbWriter {
 public:
  LmdbWriter(const std::string& dir, size_t commit_every, size_t commit_bytes = 64u << 20);
  ~LmdbWriter();  // commits what is pending (errors are printed, not thrown)

  // Committed or pending.
  bool Contains(std::string_view key) const;
  void Put(std::string_view key, std::string value);
  // Runs `before_commit` (e.g. to log sidecar state) and then commits. Returns records committed.
  size_t Commit();
  size_t pending() const { return pending_.size(); }
  // Called at the start of every non-empty Commit() with the pending keys.
  void SetBeforeCommit(std::function<void()> fn) { before_commit_ = std::move(fn); }
  // Read access to committed data.
  const LmdbEnv& env() const { return env_; }
  void Close();

 private:
  LmdbEnv env_;
  size_t commit_every_;
  size_t commit_bytes_;
  size_t pending_bytes_ = 0;
  std::vector<std::pair<std::string, std::string>> pending_;
  std::unordered_map<std::string, size_t> pending_index_;
  std::function<void()> before_commit_;
  bool closed_ = false;
};

// Read-only access for readers (thread safe: each call uses its own txn).
class LmdbReader {
 public:
  explicit LmdbReader(const std::string& dir);
  std::optional<std::string> Get(std::string_view key) const;
  bool Contains(std::string_view key) const;
  std::vector<std::string> Keys() const;
  size_t Count() const;
  void ForEach(const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  const LmdbEnv& env() const { return env_; }

 private:
  LmdbEnv env_;
};

// Deletes an LMDB folder's files (data.mdb, lock.mdb) and the folder when empty.
void RemoveLmdb(const std::string& dir);

}  // namespace uniter::featdb
