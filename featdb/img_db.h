// UNITER's img_db: `<split>/<db name>` LMDB keyed by feature file name, with
// `__keys__` (JSON list of keys) and `nbb_th{conf}_max{max}_min{min}.json`.
// Values are msgpack-numpy (UNITER's released dbs), `.npz` (the `_compressed`
// dbs), or our native codec (`_native` suffix). Readers detect the codec.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "featdb/array.h"

namespace uniter::featdb {

class LmdbWriter;
class LmdbReader;

enum class Codec { kNpz, kMsgpack, kNative };
const char* CodecName(Codec c);  // "npz", "msgpack", "native"
Codec CodecFromName(std::string_view name);  // throws UsageError

struct ImgDbOptions {
  Codec codec = Codec::kMsgpack;  // UNITER's released dbs are msgpack
  // conf_th < 0 → db `feat_numbb{num_bb}` and no nbb json (UNITER: conf_th -1);
  // rows are still cut like convert_imgdir.py does: min(max_bb, max(min_bb, all rows)).
  double conf_th = 0.2;
  int max_bb = 100;
  int min_bb = 10;
  int num_bb = 36;
  bool keep_all = false;  // `all` db: keep every row, no nbb json
  bool resume = false;    // keep existing records, Contains() tells which
  bool force = false;     // delete an existing db first
  // Records per LMDB transaction; a commit also happens every ~64 MiB of values.
  size_t commit_every = 1000;
  // Native codec only: "auto" (default; lz4 for features/norm_bb, zstd for the
  // rest), "lz4" or "zstd" (see NativeOptions in featdb/codecs.h), and the zstd level.
  std::string native_compression = "auto";
  int zstd_level = 3;
};

// "0.2" for 0.2, "1.0" for 1: Python's str(float), as UNITER's f-strings format conf_th.
std::string PythonFloatRepr(double v);
// `feat_th0.2_max100_min10`, `feat_numbb36`, `all`, plus `_compressed` for npz and `_native` for native.
std::string ImgDbName(const ImgDbOptions& o);
// `nbb_th0.2_max100_min10.json`, or "" when the options write none (conf_th < 0 or keep_all).
std::string NbbJsonName(const ImgDbOptions& o);
// UNITER's _compute_nbb: min(max_bb, max(min_bb, count(conf > conf_th))).
int ComputeNbb(const Array& conf, double conf_th, int max_bb, int min_bb);

// Record (de)serialisation, thread safe. Encode applies no truncation.
std::string EncodeImgRecord(const std::vector<Array>& arrays, Codec codec, const ImgDbOptions& options = {});
// Detects the codec from the bytes (zip magic, native magic, else msgpack).
Codec DetectCodec(std::string_view value);
// Decodes every array (or only those in `only`, when not empty; native and npz
// skip the others without decompressing them). FormatError on corrupt input.
std::vector<Array> DecodeImgRecord(std::string_view value, const std::vector<std::string>& only = {});

// The result of truncation + dtype conversion for one input record.
struct PreparedRecord {
  std::vector<Array> arrays;  // what gets stored
  int nbb = 0;                // the nbb json value (UNITER's, may exceed the rows stored)
};
// UNITER's load_npz: float32 → float16, 1-d/2-d arrays cut to nbb rows (unless
// keep_all); other ndim throws FormatError("wrong ndim"). Thread safe.
PreparedRecord PrepareImgRecord(const std::vector<Array>& arrays, const ImgDbOptions& options);

// One writer per db, not thread safe; EncodeImgRecord/PrepareImgRecord are
// thread safe for parallel stages. Crash safe like TxtDbWriter; the nbb of
// every record is logged beside the db before its commit so --resume can
// rebuild the nbb json.
class ImgDbWriter {
 public:
  // dir = <img_db_dir> (the split folder). Throws UsageError if the db exists
  // and neither options.resume nor options.force is set.
  ImgDbWriter(const std::string& img_db_dir, const ImgDbOptions& options);
  // Commits pending records. Without Close() the db lacks `__keys__` and the
  // nbb json; a later run with resume finishes it.
  ~ImgDbWriter();

  ImgDbWriter(const ImgDbWriter&) = delete;
  ImgDbWriter& operator=(const ImgDbWriter&) = delete;

  bool Contains(std::string_view key) const;
  // Applies nbb truncation + fp32→fp16 per options, then encodes.
  void Put(std::string_view key, const std::vector<Array>& arrays);
  // Stores an already prepared and encoded record (parallel pipelines).
  void PutEncoded(std::string_view key, std::string value, int nbb);
  void Commit();
  void Close();  // writes __keys__ and the nbb json

  const std::string& db_path() const { return db_path_; }

 private:
  void AppendNbbLog();

  std::string dir_;
  std::string db_path_;
  std::string nbb_log_path_;
  ImgDbOptions options_;
  std::unique_ptr<LmdbWriter> db_;
  std::map<std::string, int> nbb_;  // every record's nbb (resumed ones included)
  std::vector<std::pair<std::string, int>> pending_nbb_;
  bool closed_ = false;
};

// Reads one img_db LMDB (the db folder itself, e.g. `.../nlvr2_dev/feat_th0.2_max100_min10`).
// Thread safe; works while another process writes it.
class ImgDbReader {
 public:
  explicit ImgDbReader(const std::string& db_path);
  ~ImgDbReader();

  std::optional<std::string> GetRaw(std::string_view key) const;
  // nullopt when absent. `only`: as DecodeImgRecord.
  std::optional<std::vector<Array>> Get(std::string_view key, const std::vector<std::string>& only = {}) const;
  // Record keys in LMDB order (without `__keys__`).
  std::vector<std::string> Keys() const;
  // The `__keys__` list, or nullopt when absent.
  std::optional<std::vector<std::string>> StoredKeys() const;
  size_t size() const;  // records, without `__keys__`
  // Codec of the first record (kMsgpack for an empty db).
  Codec codec() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<LmdbReader> db_;
};

// Parses a db folder name back into options (codec from the suffix). nullopt if it is no img_db name.
std::optional<ImgDbOptions> ParseImgDbName(std::string_view name);

// What UNITER's DetectFeatLmdb does, for the trainer: opens
// `<img_dir>/<ImgDbName(options)>` and its nbb json (conf_th < 0: nbb = num_bb
// for every image), and returns each image's first nbb rows as float32.
// Thread safe.
class DetectFeatDb {
 public:
  DetectFeatDb(const std::string& img_dir, const ImgDbOptions& options);
  struct Feat {
    std::vector<float> features;  // [nbb, feat_dim]
    std::vector<float> norm_bb;   // [nbb, 6] (x1, y1, x2, y2, w, h)
    int nbb = 0;                  // rows returned (≤ the nbb json value when the image has fewer boxes)
    int feat_dim = 0;
  };
  // FormatError naming the image when it is absent or corrupt.
  Feat Get(const std::string& fname) const;
  // Every array, first nbb rows, float16 widened to float32 (UNITER's get_dump).
  std::vector<Array> GetDump(const std::string& fname) const;
  // The nbb json value (num_bb when conf_th < 0); FormatError when unknown.
  int nbb(const std::string& fname) const;
  const std::map<std::string, int>& name2nbb() const { return name2nbb_; }

 private:
  ImgDbOptions options_;
  std::unique_ptr<ImgDbReader> db_;
  std::map<std::string, int> name2nbb_;
};

}  // namespace uniter::featdb
