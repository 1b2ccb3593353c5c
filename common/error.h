// The one exception family of uniter-cpp. Every error carries what went wrong
// and where (a file, a line, a record key), so the CLI can print one clear line.
#pragma once

#include <stdexcept>
#include <string>

namespace uniter {

// Base of every error uniter-cpp throws. what() is the full one-line message:
// "<where>: <what>" when a location is known, else "<what>".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, const std::string& where = "")
      : std::runtime_error(where.empty() ? what : where + ": " + what),
        message_(what), where_(where) {}

  // The message without the location.
  const std::string& message() const { return message_; }
  // File, "file:line", "file[key]", or empty.
  const std::string& where() const { return where_; }

 private:
  std::string message_;
  std::string where_;
};

// Input that does not parse or violates a format (a corrupt npz, a bad JSON line).
class FormatError : public Error {
 public:
  using Error::Error;
};

// The operating system or a storage library refused (open, read, LMDB, disk full).
class IoError : public Error {
 public:
  using Error::Error;
};

// The caller asked for something impossible (bad flag combination, missing option).
class UsageError : public Error {
 public:
  using Error::Error;
};

// "path:line" for messages.
std::string Where(const std::string& file, long line);

// Throws IoError with strerror(errno) appended; for failed POSIX calls.
[[noreturn]] void ThrowErrno(const std::string& what, const std::string& where);

}  // namespace uniter
