// Where `uniter extract` puts the features of each image (`--format`):
//  - img_db: UNITER's img_db (featdb/img_db.h), records cut to nbb rows, fp16.
//  - npz:    one `<id>.npz` per image in a folder, the arrays of an img_db
//            record uncut and float32 (np.savez_compressed style), what BUTD's
//            UNITER fork writes and UNITER's scripts/convert_imgdir.py (and
//            `uniter featdb pack`) read: features, norm_bb, conf, soft_labels,
//            plus boxes, objects_id/conf, attrs_id/conf, image_h, image_w.
//  - tsv:    one file, LXMERT/BUTD generate_tsv.py rows (no header line):
//            img_id, img_h, img_w, objects_id, objects_conf, attrs_id,
//            attrs_conf, num_boxes, boxes, features; arrays base64 of raw
//            little-endian int64 (ids) and float32 (the rest), as LXMERT's
//            load_obj_tsv decodes them.
// Every sink is crash safe and resumable: img_db commits in batches; npz
// writes a hidden temp file and renames it; tsv appends one flushed line per
// image and, on resume, drops a torn last line.
#pragma once

#include <memory>
#include <string>

#include "extractor/extractor.h"

namespace uniter::extractor {

enum class OutputFormat { kImgDb, kNpz, kTsv };
OutputFormat OutputFormatFromName(const std::string& name);  // UsageError for others
const char* OutputFormatName(OutputFormat f);

struct SinkOptions {
  OutputFormat format = OutputFormat::kImgDb;
  // img_db: the split folder; npz: the folder; tsv: the file. Required.
  std::string out;
  std::string codec = "msgpack";      // img_db only: msgpack, npz or native
  std::string key_suffix = ".npz";    // img_db only: key = id + this
  double conf_th = 0.2;               // img_db db name and nbb (featdb::ImgDbOptions)
  int max_bb = 100, min_bb = 10;
  bool keep_all = false;              // img_db `all` (given boxes)
  bool resume = false;                // keep what is there; Contains() tells
  bool force = false;                 // start over (img_db: delete the db; npz: overwrite; tsv: truncate)
  std::string shard_tag;              // npz: shards share the folder; their rejects files don't
};

// One encoded image, ready for the serial Write().
struct EncodedImage {
  std::string id;
  std::string bytes;
  int nbb = 0;  // img_db only
};

// Not thread safe except Encode() and Contains() (const, concurrent).
class FeatureSink {
 public:
  virtual ~FeatureSink() = default;
  // `id`: the image id (key prefix + file stem). True when it is stored already.
  virtual bool Contains(const std::string& id) const = 0;
  // Serialises one image's features; runs in parallel.
  virtual EncodedImage Encode(const std::string& id, const RegionFeatures& r) const = 0;
  // Stores one image; called in input order from one thread.
  virtual void Write(EncodedImage image) = 0;
  // Finishes (img_db: __keys__ and the nbb json). Without it the output is
  // still valid up to the last Write (img_db: up to the last commit).
  virtual void Close() = 0;
  // The db folder, npz folder or tsv file written.
  virtual const std::string& path() const = 0;
  // Default rejects file for this output.
  virtual std::string DefaultRejectsPath() const = 0;
};

// Throws UsageError when the output exists and neither resume nor force is set.
std::unique_ptr<FeatureSink> MakeSink(const SinkOptions& options);

}  // namespace uniter::extractor
