// UNITER's databases as its datasets see them (data/data.py): TxtTokLmdb,
// DetectFeatLmdb, and the per-task datasets' __getitem__ (data/nlvr2.py,
// vqa.py, ve.py) — everything short of tensors; collation lives in
// trainer/data/internal/collate.h. featdb's readers are the only way in.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trainer/model.h"

namespace uniter::featdb {
class TxtDbReader;
class ImgDbReader;
}  // namespace uniter::featdb

namespace uniter::trainer::data {

// One txt_db record, decoded.
struct TextExample {
  std::vector<int64_t> input_ids;        // as stored: no [CLS]/[SEP]
  std::vector<std::string> img_fnames;   // `img_fname` (one, or NLVR2's two)
  std::optional<int64_t> target;         // an int `target` (NLVR2)
  bool has_soft_target = false;          // a {labels, scores} `target` (VQA, VE)
  std::vector<int64_t> labels;
  std::vector<float> scores;
};

// UNITER's TxtTokLmdb. Thread safe.
class TxtTokDb {
 public:
  // `max_txt_len` < 0 keeps every id (UNITER passes -1 for eval); otherwise ids
  // longer than it are dropped (lengths count no [CLS]/[SEP]). Ids keep
  // id2len.json's order. Throws a one-line error naming the db when the folder,
  // id2len.json or meta.json (CLS/SEP/MASK) is missing or malformed.
  TxtTokDb(const std::string& dir, int max_txt_len);
  ~TxtTokDb();

  const std::vector<std::string>& ids() const { return ids_; }
  const std::vector<int64_t>& txt_lens() const { return txt_lens_; }
  int64_t cls() const { return cls_; }
  int64_t sep() const { return sep_; }
  int64_t mask() const { return mask_; }
  const std::vector<int64_t>& v_range() const { return v_range_; }
  // meta.json's `bert` (the tokenizer name), "" when absent.
  const std::string& tokenizer() const { return tokenizer_; }
  const std::string& dir() const { return dir_; }

  // FormatError naming db and id when absent or malformed.
  TextExample Get(const std::string& id) const;
  // txt2img.json: id → image names (one or two). FormatError when missing.
  std::map<std::string, std::vector<std::string>> Txt2Img() const;

 private:
  std::string dir_;
  std::unique_ptr<featdb::TxtDbReader> db_;
  std::vector<std::string> ids_;
  std::vector<int64_t> txt_lens_;
  int64_t cls_ = 0, sep_ = 0, mask_ = 0;
  std::vector<int64_t> v_range_;
  std::string tokenizer_;
};

// train_vqa.py / train_vcr.py / pretrain.py's check: every db's meta.json names
// the same `bert` tokenizer. Throws FormatError naming the first db that lacks
// it or differs from the first db's.
void CheckSameTokenizer(const std::vector<const TxtTokDb*>& dbs);

// UNITER's img_db options (the train configs' keys).
struct ImgDbOptions {
  double conf_th = 0.2;        // -1: `feat_numbb{num_bb}`, every image num_bb boxes
  int max_bb = 100;
  int min_bb = 10;
  int num_bb = 36;
  bool compressed_db = false;  // the `_compressed` (npz) db
};

// The img_db keys of a run's options (TrainOptions, InferOptions: both carry
// UNITER's config names).
template <class RunOptions>
ImgDbOptions ImgDbOptionsOf(const RunOptions& o) {
  ImgDbOptions io;
  io.conf_th = o.conf_th;
  io.max_bb = o.max_bb;
  io.min_bb = o.min_bb;
  io.num_bb = o.num_bb;
  io.compressed_db = o.compressed_db;
  return io;
}

// One image's first nbb rows, as DetectFeatTxtTokDataset._get_img_feat returns them.
struct ImageFeat {
  int64_t nbb = 0;       // rows returned (may be fewer than the nbb json says)
  int64_t feat_dim = 0;
  // Features as the db stores them, row-major, at least nbb rows: fp16 bits
  // (UNITER's dbs; collate widens them straight into the batch, exactly as
  // .float() does) or float32 (other dtypes are converted to float32).
  bool feat_is_f16 = true;
  std::string feat_bytes;
  std::vector<float> pos;  // [nbb, 7]: norm_bb (6, widened) then w·h in float32
  // MRC's detector soft labels [nbb, label_dim] float32 (get_dump's
  // soft_labels[:nbb]); empty unless asked for.
  std::vector<float> soft_labels;
  int64_t label_dim = 0;

  // Writes the nbb × feat_dim float32 features to `out`.
  void CopyFeatures(float* out) const;
};

// UNITER's DetectFeatLmdb over `img_dir` (the folder holding feat_th*/nbb json;
// conf_th -1: every image num_bb). The db is UNITER's name for the options;
// without `compressed_db`, a missing msgpack db falls back to our native
// codec's db of the same name. The codec of each record is detected (msgpack,
// npz, native). Thread safe.
class ImgFeatDb {
 public:
  ImgFeatDb(const std::string& img_dir, const ImgDbOptions& options);
  ~ImgFeatDb();

  // The nbb json value (num_bb when conf_th is -1): the length the sampler counts.
  // FormatError naming db and image when unknown.
  int64_t Nbb(const std::string& fname) const;
  // FormatError naming db and image when absent or corrupt (or, with
  // `soft_labels`, lacking a 2-d soft_labels array of the features' rows).
  ImageFeat Get(const std::string& fname, bool soft_labels = false) const;
  const std::string& dir() const { return dir_; }
  const std::string& db_path() const { return db_path_; }

 private:
  std::string dir_;
  std::string db_path_;
  ImgDbOptions options_;
  std::unique_ptr<featdb::ImgDbReader> db_;
  std::map<std::string, int64_t> name2nbb_;
};

enum class Task { kNlvr2Paired, kNlvr2Triplet, kVqa, kVe };

// The dataset layout a task model reads: NLVR2's `triplet` head reads one row
// per example, `paired` and `paired-attn` two (train_nlvr2.py's choice).
Task TaskForModel(TaskKind task, const std::string& nlvr2_model);
const char* TaskName(Task t);

struct DatasetOptions {
  Task task = Task::kVqa;
  bool use_img_type = true;   // NLVR2: image type ids 1/2 (UNITER's --use_img_type)
  int64_t num_answers = 0;    // VQA soft-target width; 0 = the task's (VQA 3129, VE 3)
  int rank = 0;               // rank sharding: ids[rank::world] of each db
  int world = 1;
};

// What a task dataset's __getitem__ yields for one example.
struct Example {
  std::string id;
  std::vector<int64_t> input_ids;  // [CLS] ids [SEP]
  std::vector<ImageFeat> images;   // NLVR2: two, else one
  std::optional<int64_t> target;   // NLVR2 class
  bool has_soft_target = false;    // VQA/VE
  std::vector<int64_t> labels;
  std::vector<float> scores;
};

struct DbPair {
  std::shared_ptr<const TxtTokDb> txt;
  std::shared_ptr<const ImgFeatDb> img;
};

// A task dataset over one or more (txt_db, img_db) pairs, concatenated in
// order (UNITER's ConcatDatasetWithLens); each db is rank-sharded on its own,
// as get_ids_and_lens does. Thread safe.
class TaskDataset {
 public:
  TaskDataset(std::vector<DbPair> dbs, const DatasetOptions& options);

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  // Sampler lengths as UNITER counts them (tl + nbb; NLVR2 paired 2·tl + nbb0 + nbb1).
  const std::vector<int64_t>& lens() const { return lens_; }
  const std::string& id(int64_t i) const { return ids_.at(i); }
  const DatasetOptions& options() const { return options_; }
  int64_t num_answers() const { return num_answers_; }

  Example Get(int64_t i) const;

 private:
  std::vector<DbPair> dbs_;
  DatasetOptions options_;
  int64_t num_answers_ = 0;
  std::vector<std::string> ids_;
  std::vector<int> db_of_;  // which pair each example reads
  std::vector<int64_t> lens_;
};

}  // namespace uniter::trainer::data
