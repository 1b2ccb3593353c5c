// A read-only zip parser for in-memory archives (the npz read path), and raw
// deflate inflation with the fastest backend this build has.
//
// Why not libzip here: a `.npz` value is already one buffer in LMDB's map, and
// libzip's open (source objects, entry tables, a copy of every compressed
// member) cost about as much as the rest of a `features` decode but the
// inflate (bench/featdb). This parser only reads the central directory and
// the local headers, and hands out views into the buffer.
//
// Supported: stored (0) and deflated (8) members, zip64 sizes/offsets (numpy
// writes a zip64 extra field in every local header), data descriptors (the
// central directory has the sizes), archive comments. Rejected with a
// FormatError naming `where`: encryption, other methods, multi-disk archives,
// anything that points outside the buffer. All functions are thread safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace uniter::featdb::internal {

struct ZipMember {
  std::string_view name;  // as stored (a view into the archive)
  uint16_t method = 0;    // 0 stored, 8 deflate (others are rejected by ListZipMembers)
  uint32_t crc32 = 0;     // of the uncompressed bytes, from the central directory
  uint64_t size = 0;      // uncompressed bytes
  std::string_view data;  // the member's compressed bytes, a view into the archive
};

// The members in central-directory order. Checks every bound: the central
// directory, each local header (signature, name equal to the directory's),
// and each member's data lie inside `zip`; stored members have size ==
// compressed size; a deflated member claims at most ~1100x its compressed size
// and < 4 GiB (a corrupt header must not make the caller allocate gigabytes).
std::vector<ZipMember> ListZipMembers(std::string_view zip, const std::string& where);

enum class InflateBackend {
  kLibdeflate,  // Debian libdeflate-dev (optional): ~2.3x zlib on npz members here
  kZlib,        // always built; the fallback
};
// The fastest backend this build has.
InflateBackend DefaultInflateBackend();
bool HaveInflateBackend(InflateBackend b);

// Inflates the raw deflate stream `in` into exactly `out_size` bytes at `out`.
// False when the stream is corrupt or does not decode to exactly `out_size`
// bytes (then `out` holds garbage). REQUIRES: HaveInflateBackend(b).
bool InflateRaw(std::string_view in, char* out, size_t out_size, InflateBackend b = DefaultInflateBackend());

// The zip (IEEE) CRC-32 of `data` (libdeflate's PCLMUL version when built with it).
uint32_t ZipCrc32(const char* data, size_t size);

// Decodes `m` into exactly m.size bytes at `out` and checks its CRC-32; a
// FormatError naming `where` and the member when anything does not match.
void ExtractZipMember(const ZipMember& m, char* out, const std::string& where,
                      InflateBackend b = DefaultInflateBackend());

}  // namespace uniter::featdb::internal
