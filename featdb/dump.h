// `uniter dump`: inspect a txt_db or img_db (detected from the records): list
// keys, show records decoded, or print statistics. Read-only; works on a db
// another process is writing (each read is its own LMDB snapshot).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace uniter::featdb {

struct DumpOptions {
  std::string db;                 // the LMDB folder (txt_db, or an img_db like .../feat_th0.2_max100_min10)
  std::vector<std::string> keys;  // records to show; empty: list keys (or --stats)
  std::string vocab;              // BERT vocab.txt: show input_ids as tokens too
  bool json = false;              // machine-readable output (one JSON document)
  bool stats = false;             // count, length/nbb histogram, bytes on disk, codec
  int rows = 3;                   // img_db: array rows shown
  int cols = 8;                   // img_db: columns shown per row
  size_t limit = 0;               // key listing: at most this many (0 = all)
};

// Writes to `out`; throws FormatError for a non-LMDB folder and for a key that is absent.
void Dump(const DumpOptions& options, std::ostream& out);

}  // namespace uniter::featdb
