// libFuzzer target: the .npy parser and the .npz (zip) reader.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "featdb/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& a : uniter::featdb::ReadNpz(in, "fuzz")) a.Validate("fuzz");
  } catch (const uniter::Error&) {
  }
  try {
    uniter::featdb::ParseNpy(in, "x").Validate("fuzz");
  } catch (const uniter::Error&) {
  }
  return 0;
}
