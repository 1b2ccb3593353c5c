// The image record codecs below img_db: msgpack-numpy (UNITER's plain dbs)
// and the native protobuf codec (our `_native` dbs). npz lives in npy.h.
// All functions are thread safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "featdb/array.h"

namespace uniter::featdb {

// `msgpack.dumps({name: ndarray, ...}, use_bin_type=True)` with msgpack_numpy
// patched: a map of name → {b'nd': True, b'type': '<f2', b'kind': b'',
// b'shape': [..], b'data': bytes}.
std::string EncodeMsgpackNumpy(const std::vector<Array>& arrays);
// Accepts str or bin keys and type strings, numpy scalars ({b'nd': False}) as
// 0-d arrays; structured/object arrays and non-array values are FormatErrors.
std::vector<Array> DecodeMsgpackNumpy(std::string_view bytes, const std::vector<std::string>& only = {});

struct NativeOptions {
  // "auto" (default): lz4 for the arrays the trainer reads every step
  // (features, norm_bb: fastest decode), zstd for the rest (smaller); chosen
  // by measurement in bench/featdb. Or "lz4", "zstd", "none" for every array.
  std::string compression = "auto";
  int zstd_level = 3;
};
// The native record: magic, a CRC-32C over the record's metadata, and per
// array (each with a CRC-32C of its payload, checked when it is decoded): dtype, shape, filter (zero mask + byte shuffle when >= 25% of the
// elements are zero, else byte shuffle), and the payload compressed per
// `options` (an array that does not shrink is stored uncompressed). The
// choices are recorded per array, so readers need no options.
std::string EncodeNative(const std::vector<Array>& arrays, const NativeOptions& options = {});
// True when `bytes` starts with the native magic.
bool IsNative(std::string_view bytes);
// Checks the metadata checksum and the payload checksum of every array it
// decodes (a full decode checks every byte); FormatError on any corruption.
std::vector<Array> DecodeNative(std::string_view bytes, const std::vector<std::string>& only = {});
// Per-array codec description for dump: "lz4+shuffle", "zstd", "none"...
std::vector<std::string> DescribeNative(std::string_view bytes);

// CRC-32C (Castagnoli), hardware accelerated on x86-64 with SSE4.2.
uint32_t Crc32c(std::string_view data);
// Continues a CRC-32C: Crc32cExtend(Crc32c(a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, std::string_view data);

}  // namespace uniter::featdb
