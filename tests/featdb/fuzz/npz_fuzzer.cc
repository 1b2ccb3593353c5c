// libFuzzer target: the .npy parser, the .npz reader, and the zip parser with
// every inflate backend of the build (the library uses only the fastest).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"
#include "featdb/internal/zip_reader.h"
#include "featdb/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace internal = uniter::featdb::internal;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& a : uniter::featdb::ReadNpz(in, "fuzz")) a.Validate("fuzz");
  } catch (const uniter::Error&) {
  }
  try {
    for (const internal::ZipMember& m : internal::ListZipMembers(in, "fuzz")) {
      std::string out(m.size, '\0');
      for (auto b : {internal::InflateBackend::kLibdeflate, internal::InflateBackend::kZlib}) {
        if (!internal::HaveInflateBackend(b)) continue;
        try {
          internal::ExtractZipMember(m, out.data(), "fuzz", b);
        } catch (const uniter::Error&) {
        }
      }
    }
  } catch (const uniter::Error&) {
  }
  try {
    uniter::featdb::ParseNpy(in, "x").Validate("fuzz");
  } catch (const uniter::Error&) {
  }
  return 0;
}
