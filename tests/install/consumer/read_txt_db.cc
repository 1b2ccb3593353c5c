// Reads a txt_db through the installed uniter::featdb: prints the number of
// records, then "<key> <len(input_ids)>" for each, in key order.
#include <cstdio>
#include <exception>

#include "featdb/txt_db.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: read_txt_db <txt_db>\n");
    return 2;
  }
  try {
    const uniter::featdb::TxtDbReader db(argv[1]);
    std::printf("%zu\n", db.size());
    for (const std::string& key : db.Keys()) {
      const auto v = db.Get(key);
      std::printf("%s %zu\n", key.c_str(), v->at("input_ids").as_array().size());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
