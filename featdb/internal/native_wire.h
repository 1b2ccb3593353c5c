// The native record's arrays as parsed from the wire, before decompression:
// shared by the hand-written parser (native_codec.cc) and the libprotobuf one
// (native_pb.cc), so both run the same decode and checks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "featdb/array.h"

namespace uniter::featdb::internal {

struct WireArray {
  std::string_view name;
  uint64_t dtype = 0, compression = 0, filter = 0, raw_size = 0, filtered_size = 0;
  uint32_t payload_crc = 0;
  bool has_crc = false;
  std::vector<int64_t> shape;
  std::string_view payload;  // a view into the caller's bytes
};

// Decompresses, unfilters and checks (payload CRC, sizes) the arrays named in
// `only` (all when empty). Throws FormatError ("corrupt native record: ...").
std::vector<Array> DecodeWireArrays(const std::vector<WireArray>& wire, const std::vector<std::string>& only);

}  // namespace uniter::featdb::internal
