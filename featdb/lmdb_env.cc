#include "featdb/lmdb_env.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "common/error.h"

namespace fs = std::filesystem;

namespace uniter::featdb {
namespace {

constexpr size_t kInitialMapSize = size_t{64} << 20;

MDB_val ToVal(std::string_view s) {
  MDB_val v;
  v.mv_size = s.size();
  v.mv_data = const_cast<char*>(s.data());
  return v;
}

std::string_view FromVal(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

}  // namespace

void ThrowLmdb(int rc, const std::string& what, const std::string& where) {
  // LMDB reports a short write as EIO, which is what a full disk gives it:
  // ask the filesystem before calling it an I/O error.
  if (rc == ENOSPC || rc == EIO) {
    struct statvfs st;
    if (statvfs(where.c_str(), &st) == 0) {
      const unsigned long long avail = static_cast<unsigned long long>(st.f_bavail) * st.f_frsize;
      if (rc == ENOSPC || avail < (1ull << 20))
        throw IoError(what + ": disk full (" + std::to_string(avail / 1024) + " KiB free; " + mdb_strerror(rc) + ")",
                      where);
    } else if (rc == ENOSPC) {
      throw IoError(what + ": disk full (" + mdb_strerror(rc) + ")", where);
    }
  }
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
    throw FormatError(what + ": not a valid LMDB database (" + mdb_strerror(rc) + ")", where);
  throw IoError(what + ": " + mdb_strerror(rc), where);
}

bool IsLmdbDir(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "data.mdb", ec);
}

LmdbEnv::LmdbEnv(const std::string& dir, bool readonly, size_t map_size) : dir_(dir), readonly_(readonly) {
  std::error_code ec;
  if (readonly) {
    if (!fs::exists(dir, ec)) throw IoError("no such database folder", dir);
    if (!fs::is_directory(dir, ec)) throw FormatError("not a database folder (it is a file)", dir);
    if (!IsLmdbDir(dir)) throw FormatError("not an LMDB database (no data.mdb in the folder)", dir);
  } else {
    fs::create_directories(dir, ec);
    if (ec) throw IoError("cannot create folder: " + ec.message(), dir);
  }
  int rc = mdb_env_create(&env_);
  if (rc) ThrowLmdb(rc, "mdb_env_create", dir);
  // The file's own map size wins when larger; a reader never needs to pick one.
  size_t want = map_size ? map_size : kInitialMapSize;
  if (!readonly) {
    struct stat st;
    const std::string data = dir + "/data.mdb";
    if (::stat(data.c_str(), &st) == 0) {
      const size_t file = static_cast<size_t>(st.st_size);
      while (want < file + kInitialMapSize) want *= 2;
    }
  }
  rc = mdb_env_set_mapsize(env_, want);
  if (!rc) rc = mdb_env_set_maxreaders(env_, 512);
  // MDB_NOTLS: read txns are not tied to threads, so readers may hop threads (TBB).
  unsigned flags = MDB_NOTLS | (readonly ? MDB_RDONLY : 0u);
  if (!rc) rc = mdb_env_open(env_, dir.c_str(), flags, 0664);
  if (rc) {
    mdb_env_close(env_);
    env_ = nullptr;
    ThrowLmdb(rc, "cannot open LMDB", dir);
  }
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env_, nullptr, readonly ? MDB_RDONLY : 0, &txn);
  if (rc == MDB_MAP_RESIZED) {
    mdb_env_set_mapsize(env_, 0);
    rc = mdb_txn_begin(env_, nullptr, readonly ? MDB_RDONLY : 0, &txn);
  }
  if (!rc) rc = mdb_dbi_open(txn, nullptr, 0, &dbi_);
  if (!rc) rc = readonly ? (mdb_txn_abort(txn), 0) : mdb_txn_commit(txn);
  else if (txn) mdb_txn_abort(txn);
  if (rc) {
    mdb_env_close(env_);
    env_ = nullptr;
    ThrowLmdb(rc, "cannot open LMDB main database", dir);
  }
}

LmdbEnv::~LmdbEnv() {
  if (env_) mdb_env_close(env_);
}

size_t LmdbEnv::map_size() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

void LmdbEnv::Grow(size_t min_extra) {
  size_t now = map_size();
  size_t want = now * 2;
  if (want < now + min_extra * 2) want = now + min_extra * 2;
  int rc = mdb_env_set_mapsize(env_, want);
  if (rc) ThrowLmdb(rc, "cannot grow the LMDB map to " + std::to_string(want) + " bytes", dir_);
}

LmdbReadTxn::LmdbReadTxn(const LmdbEnv& env) : env_(env) {
  int rc = mdb_txn_begin(env.env(), nullptr, MDB_RDONLY, &txn_);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map: adopt its size and retry.
    mdb_env_set_mapsize(env.env(), 0);
    rc = mdb_txn_begin(env.env(), nullptr, MDB_RDONLY, &txn_);
  }
  if (rc) ThrowLmdb(rc, "cannot begin a read transaction", env.dir());
}

LmdbReadTxn::~LmdbReadTxn() {
  if (txn_) mdb_txn_abort(txn_);
}

std::optional<std::string_view> LmdbReadTxn::Get(std::string_view key) const {
  if (key.empty() || key.size() > 511) return std::nullopt;  // LMDB's key limit
  MDB_val k = ToVal(key), v;
  int rc = mdb_get(txn_, env_.dbi(), &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc) ThrowLmdb(rc, "read failed for key '" + std::string(key) + "'", env_.dir());
  return FromVal(v);
}

void LmdbReadTxn::ForEach(const std::function<bool(std::string_view, std::string_view)>& fn) const {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, env_.dbi(), &cur);
  if (rc) ThrowLmdb(rc, "cannot open a cursor", env_.dir());
  MDB_val k, v;
  rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  while (rc == 0) {
    if (!fn(FromVal(k), FromVal(v))) break;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc && rc != MDB_NOTFOUND) ThrowLmdb(rc, "cursor read failed", env_.dir());
}

size_t LmdbReadTxn::Count() const {
  MDB_stat st;
  int rc = mdb_stat(txn_, env_.dbi(), &st);
  if (rc) ThrowLmdb(rc, "mdb_stat failed", env_.dir());
  return st.ms_entries;
}

LmdbWriter::LmdbWriter(const std::string& dir, size_t commit_every, size_t commit_bytes)
    : env_(dir, /*readonly=*/false), commit_every_(commit_every ? commit_every : 1), commit_bytes_(commit_bytes) {}

LmdbWriter::~LmdbWriter() {
  try {
    Close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uniter: error: %s\n", e.what());
  }
}

bool LmdbWriter::Contains(std::string_view key) const {
  if (pending_index_.count(std::string(key))) return true;
  LmdbReadTxn txn(env_);
  return txn.Get(key).has_value();
}

void LmdbWriter::Put(std::string_view key, std::string value) {
  if (closed_) throw UsageError("write to a closed database", env_.dir());
  if (key.empty() || key.size() > 511)
    throw UsageError("LMDB keys must be 1..511 bytes, got " + std::to_string(key.size()), env_.dir());
  pending_bytes_ += key.size() + value.size();
  auto it = pending_index_.find(std::string(key));
  if (it != pending_index_.end()) {
    pending_[it->second].second = std::move(value);
  } else {
    pending_index_.emplace(std::string(key), pending_.size());
    pending_.emplace_back(std::string(key), std::move(value));
  }
  if (pending_.size() >= commit_every_ || pending_bytes_ >= commit_bytes_) Commit();
}

size_t LmdbWriter::Commit() {
  if (pending_.empty()) return 0;
  if (before_commit_) before_commit_();
  // The queue is kept until the commit succeeds, so MDB_MAP_FULL costs a retry, not data.
  for (int attempt = 0;; ++attempt) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_.env(), nullptr, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      mdb_env_set_mapsize(env_.env(), 0);
      rc = mdb_txn_begin(env_.env(), nullptr, 0, &txn);
    }
    if (rc) ThrowLmdb(rc, "cannot begin a write transaction", env_.dir());
    for (auto& [k, v] : pending_) {
      MDB_val key = ToVal(k), val = ToVal(v);
      rc = mdb_put(txn, env_.dbi(), &key, &val, 0);
      if (rc) break;
    }
    if (!rc) {
      rc = mdb_txn_commit(txn);
    } else {
      mdb_txn_abort(txn);
    }
    if (rc == MDB_MAP_FULL && attempt < 40) {
      env_.Grow(pending_bytes_ + (size_t{1} << 20));
      continue;
    }
    if (rc) ThrowLmdb(rc, "commit failed", env_.dir());
    break;
  }
  const size_t n = pending_.size();
  pending_.clear();
  pending_index_.clear();
  pending_bytes_ = 0;
  return n;
}

void LmdbWriter::Close() {
  if (closed_) return;
  Commit();
  closed_ = true;
}

LmdbReader::LmdbReader(const std::string& dir) : env_(dir, /*readonly=*/true) {}

std::optional<std::string> LmdbReader::Get(std::string_view key) const {
  LmdbReadTxn txn(env_);
  auto v = txn.Get(key);
  if (!v) return std::nullopt;
  return std::string(*v);
}

bool LmdbReader::Contains(std::string_view key) const {
  LmdbReadTxn txn(env_);
  return txn.Get(key).has_value();
}

std::vector<std::string> LmdbReader::Keys() const {
  std::vector<std::string> keys;
  LmdbReadTxn txn(env_);
  txn.ForEach([&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  });
  return keys;
}

size_t LmdbReader::Count() const {
  LmdbReadTxn txn(env_);
  return txn.Count();
}

void LmdbReader::ForEach(const std::function<bool(std::string_view, std::string_view)>& fn) const {
  LmdbReadTxn txn(env_);
  txn.ForEach(fn);
}

void RemoveLmdb(const std::string& dir) {
  std::error_code ec;
  fs::remove(fs::path(dir) / "data.mdb", ec);
  fs::remove(fs::path(dir) / "lock.mdb", ec);
  fs::remove(dir, ec);  // only when empty
}

}  // namespace uniter::featdb
