// The native img_db record read through the protoc-generated classes of
// featdb/native_record.proto and libprotobuf: the independent reader the tests
// hold the hand-written parser (native_codec.cc) against, and its peer in
// bench/featdb_bench. Link uniter::featdb_pb (it brings libprotobuf).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "featdb/array.h"

namespace uniter::featdb {

// DecodeNative through libprotobuf: the envelope is read with a
// CodedInputStream over the value (the record field aliased, not copied), the
// NativeRecord parsed into a per-thread arena (each payload copied once), then
// the same decompression and payload CRC checks as DecodeNative. The envelope's
// metadata CRC is not checked: the generated classes do not say where each
// payload sat in the bytes.
std::vector<Array> DecodeNativePb(std::string_view bytes, const std::vector<std::string>& only = {});

}  // namespace uniter::featdb
