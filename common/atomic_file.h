// Whole-file writes that a crash cannot tear: the bytes go to `<path>.tmp`,
// are flushed to disk (fsync), and only then renamed over `path` (the folder
// synced after), so a reader or a resumed run sees the old file or the new
// one, never a prefix.
#pragma once

#include <string>
#include <string_view>

namespace uniter {

// Replaces `path` with `data`. Throws IoError naming the file on any failure
// ("disk full" included); `path` is then unchanged.
void WriteFileAtomic(const std::string& path, std::string_view data);

// The whole of `path` as bytes. IoError naming the file when unreadable.
std::string ReadWholeFile(const std::string& path);

}  // namespace uniter
