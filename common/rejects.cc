#include "common/rejects.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace uniter {

RejectsFile::RejectsFile(std::string path, bool append) : path_(std::move(path)), append_(append) {}

RejectsFile::~RejectsFile() {
  if (f_) std::fclose(f_);
}

void RejectsFile::Add(const Reject& r) {
  nlohmann::json j;
  j["file"] = r.file;
  if (r.line > 0) j["line"] = r.line;
  if (!r.key.empty()) j["key"] = r.key;
  j["reason"] = r.reason;
  // Replace invalid UTF-8 instead of throwing: a reject must never abort the run.
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::lock_guard<std::mutex> lock(mu_);
  ++count_;
  if (path_.empty()) return;
  if (!f_) {
    f_ = std::fopen(path_.c_str(), append_ ? "a" : "w");
    if (!f_) ThrowErrno("cannot open rejects file", path_);
  }
  std::fprintf(f_, "%s\n", text.c_str());
  std::fflush(f_);
}

uint64_t RejectsFile::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

}  // namespace uniter
