// libFuzzer target for the safe pickle reader: any input either parses or
// throws uniter::FormatError; it never crashes, hangs or leaks.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     tests/common/pickle_fuzz.cc common/pickle_reader.cc common/error.cc common/utf8.cc
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "common/pickle_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    uniter::ParsePickle(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const uniter::FormatError&) {
  }
  return 0;
}
