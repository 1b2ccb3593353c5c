// libFuzzer target: the native record decoder. Inputs get a valid envelope
// (magic, length, CRC) around the fuzzed bytes half of the time, so the fuzzer
// reaches the record parser and the decompressors, not just the checksum.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"
#include "featdb/codecs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string value;
  if (!in.empty() && (in[0] & 1)) {
    in.remove_prefix(1);
    value.assign("\x1dUNR1\x0a", 6);
    uint64_t n = in.size();
    while (n >= 0x80) {
      value.push_back(static_cast<char>((n & 0x7f) | 0x80));
      n >>= 7;
    }
    value.push_back(static_cast<char>(n));
    value.append(in);
    value.push_back(0x15);
    const uint32_t crc = uniter::featdb::Crc32c(in);
    value.append(reinterpret_cast<const char*>(&crc), 4);
  } else {
    value.assign(in);
  }
  try {
    for (const auto& a : uniter::featdb::DecodeNative(value)) a.Validate("fuzz");
    uniter::featdb::DescribeNative(value);
  } catch (const uniter::Error&) {
  }
  return 0;
}
