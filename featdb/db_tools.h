// Whole-database operations behind `uniter featdb convert|merge|verify`, and
// the db-kind detection `uniter dump` shares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "featdb/img_db.h"

namespace uniter::featdb {

enum class DbKind { kTxt, kImg };
// Opens nothing but peeks at the first record: an lz4 frame is a txt_db,
// anything else an img_db. FormatError for a non-LMDB folder; an empty db is
// an img_db when its folder name is an img_db name, else a txt_db.
DbKind DetectDbKind(const std::string& db_path);

struct ConvertOptions {
  std::string src_db;   // an img_db folder, e.g. data/img/coco_val2014/feat_th0.2_max100_min10
  std::string dst_dir;  // the split folder to write into (may be the source's own)
  Codec codec = Codec::kNative;
  std::string native_compression = "auto";
  bool resume = false;
  bool force = false;
  bool quiet = false;
};
struct ConvertResult {
  std::string dst_db;
  uint64_t records = 0;
  uint64_t src_bytes = 0, dst_bytes = 0;  // value bytes
};
// Re-encodes every record (arrays unchanged) and copies the nbb json.
ConvertResult Convert(const ConvertOptions& o);

struct MergeOptions {
  std::vector<std::string> shards;  // db folders with the same name (img_db) or txt_db folders
  std::string out;  // img_db: the split folder; txt_db: the db folder
  bool resume = false;
  bool force = false;
  bool quiet = false;
};
struct MergeResult {
  std::string out_db;
  uint64_t records = 0;
  uint64_t duplicates = 0;  // identical records found in several shards (kept once)
};
// Records and sidecars (nbb json; id2len/txt2img/img2txts/meta for txt_dbs)
// are unioned; a key with different values in two shards is a FormatError.
MergeResult Merge(const MergeOptions& o);

struct VerifyResult {
  DbKind kind = DbKind::kImg;
  uint64_t records = 0;
  std::vector<std::string> problems;  // empty = ok
  bool ok() const { return problems.empty(); }
};
// Every record decodes (native: checksum), and the sidecars agree with the
// LMDB: img_db `__keys__` and nbb json list exactly the records; txt_db
// meta.json has CLS/SEP/MASK/v_range, id2len/txt2img name existing records and
// id2len matches len(input_ids). `max_problems` caps the list.
VerifyResult Verify(const std::string& db_path, size_t max_problems = 50);

}  // namespace uniter::featdb
