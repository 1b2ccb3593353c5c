// The rejects file of a long run: one JSON line per bad record, written as
// soon as it is found (flushed, so a crash loses none), counted for the summary.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace uniter {

struct Reject {
  std::string file;    // input file the record came from
  long line = 0;       // 1-based line number, 0 when not line-based
  std::string key;     // record id / key when known
  std::string reason;  // one line, why it was rejected
};

// Thread safe. With an empty path, rejects are only counted.
class RejectsFile {
 public:
  // Opens (truncating, or appending when `append`, e.g. on --resume) lazily at
  // the first Add(), so a clean run leaves no empty file behind.
  explicit RejectsFile(std::string path, bool append = false);
  ~RejectsFile();

  RejectsFile(const RejectsFile&) = delete;
  RejectsFile& operator=(const RejectsFile&) = delete;

  void Add(const Reject& r);
  uint64_t count() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool append_;
  mutable std::mutex mu_;
  std::FILE* f_ = nullptr;
  uint64_t count_ = 0;
};

}  // namespace uniter
