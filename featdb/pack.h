// `uniter featdb pack`: BUTD `.npz` feature files → an img_db, replacing
// UNITER's scripts/convert_imgdir.py (same layout, db name, nbb json, record
// contents), with parallel decode/encode and one ordered LMDB writer.
#pragma once

#include <cstdint>
#include <string>

#include "featdb/img_db.h"

namespace uniter::featdb {

struct PackOptions {
  std::string npz_dir;     // folder of <name>.npz files (not recursive, like glob('*.npz'))
  std::string img_db_dir;  // output root: the db goes to <img_db_dir>/<basename(npz_dir)>/<db name>
  ImgDbOptions db;         // codec, conf_th, max/min/num_bb, keep_all, resume, force
  int threads = 0;         // 0 = all cores
  bool quiet = false;      // no progress output
  // Rejects file; default "<split dir>/<db name>.rejects.jsonl". Appended on resume.
  std::string rejects_path;
};

struct PackResult {
  std::string db_path;
  uint64_t inputs = 0;    // .npz files found
  uint64_t written = 0;   // records stored by this run
  uint64_t skipped = 0;   // already present (--resume)
  uint64_t rejected = 0;  // corrupt or invalid files (see the rejects file)
  uint64_t value_bytes = 0;  // bytes of the values this run stored
  double seconds = 0;
  std::string rejects_path;
};

// Order of records is deterministic (sorted file names), independent of threads.
// Throws UsageError for a missing input folder or an existing db without resume/force.
PackResult Pack(const PackOptions& options);

}  // namespace uniter::featdb
