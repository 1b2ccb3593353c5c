// libFuzzer target: the msgpack decoder (txt_db values) and msgpack-numpy records.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "featdb/codecs.h"
#include "featdb/value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    const uniter::featdb::Value v = uniter::featdb::DecodeMsgpack(in);
    // What decodes must re-encode and decode to the same value.
    if (uniter::featdb::DecodeMsgpack(uniter::featdb::EncodeMsgpack(v)) != v) __builtin_trap();
  } catch (const uniter::Error&) {
  }
  try {
    for (const auto& a : uniter::featdb::DecodeMsgpackNumpy(in)) a.Validate("fuzz");
  } catch (const uniter::Error&) {
  }
  try {
    uniter::featdb::Lz4FrameDecompress(in);
  } catch (const uniter::Error&) {
  }
  return 0;
}
