#include "common/error.h"

#include <cerrno>
#include <cstring>

namespace uniter {

std::string Where(const std::string& file, long line) {
  return file + ":" + std::to_string(line);
}

void ThrowErrno(const std::string& what, const std::string& where) {
  const int err = errno;
  throw IoError(what + ": " + std::strerror(err), where);
}

}  // namespace uniter
