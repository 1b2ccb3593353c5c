// UNITER's RE and VCR data (data/re.py, data/vcr.py): the txt_db sidecars
// these tasks read, their examples and their collation into Batch rows.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/data/datasets.h"
#include "trainer/data/py_random.h"
#include "trainer/internal/batch.h"

namespace uniter::featdb {
class TxtDbReader;
}  // namespace uniter::featdb

namespace uniter::trainer::data {

// One encoder row before padding: [CLS] … [SEP] ids, their type ids (empty =
// none passed) and the images whose rows follow, concatenated in order.
struct RowSpec {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> txt_type_ids;
  std::vector<const ImageFeat*> images;
};

// Pads as UNITER's re_collate / vcr_collate do: input_ids, txt_type_ids and
// attn_masks 0, features 0, obj_masks 1 (true) on padding boxes; txt_lens and
// num_bbs per row; gather_index as get_gather_index. Targets are the caller's.
Batch CollateRows(const std::vector<RowSpec>& rows);

// ---------------------------------------------------------------------- RE

struct ReImage {
  int64_t width = 0, height = 0;
  std::vector<int64_t> ann_ids;
};

struct ReExample {
  std::string sent_id;
  std::vector<int64_t> input_ids;  // [CLS] ids [SEP]
  int64_t image_id = 0, ann_id = 0;
  std::vector<double> bbox;  // the referent, xywh pixels
  bool bbox_is_int = false;  // every field an int (np.array keeps int64; results json prints ints)
};

// ReTxtTokLmdb: refs.json, images.json, id2len.json, meta.json and the db.
// Thread safe once built (Shuffle excepted).
class ReTxtDb {
 public:
  // `max_txt_len` −1 keeps every sentence, else id2len's len ≤ max and then
  // _get_sent_ids' strict len < max. Errors name the db and the sidecar.
  ReTxtDb(const std::string& dir, int max_txt_len);
  ~ReTxtDb();

  // _get_sent_ids: refs in their current order, each ref's sent_ids.
  std::vector<std::string> SentIds() const;
  // ReTxtTokLmdb.shuffle: random.shuffle(ref_ids).
  void Shuffle(PyRandom& rng) { rng.Shuffle(ref_ids_); }
  // The refs' current order, and putting back one saved from it (a resumed
  // run); FormatError naming `where` unless `order` reorders these refs.
  const std::vector<int64_t>& ref_order() const { return ref_ids_; }
  void SetRefOrder(std::vector<int64_t> order, const std::string& where);
  // FormatError naming db[sent_id] when absent or malformed.
  ReExample Get(const std::string& sent_id) const;
  // FormatError naming db and image when images.json lacks it.
  const ReImage& Image(int64_t image_id, const std::string& sent_id) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int max_txt_len_;
  std::unique_ptr<featdb::TxtDbReader> db_;
  std::vector<int64_t> ref_ids_;
  std::map<int64_t, std::vector<int64_t>> ref_sents_;
  std::map<std::string, int64_t> id2len_;
  std::map<int64_t, ReImage> images_;
  int64_t cls_ = 0, sep_ = 0;
};

// The box file an RE image reads: gt `visual_grounding_coco_gt_{id:012}.npz`
// or detected `visual_grounding_det_coco_{id:012}.npz`.
std::string ReImageName(int64_t image_id, bool gt);
// create_dataloader's rule: an img_db path containing "coco_gt" holds gt boxes.
bool ReIsGtDb(const std::string& img_db);

// One RE example's rows for the model, with what eval and the loss need.
struct ReItem {
  ReExample ex;
  ImageFeat img;
  int64_t target = -1;            // index of ann_id among the image's ann_ids (training)
  std::vector<float> obj_boxes;   // [nbb, 4] xywh, float32 as img_pos_feat × width/height
};

// ReDataset / ReEvalDataset __getitem__: `training` checks the gt rows
// against images.json (same count; the referent's ann_id among them) and sets
// target; every item gets obj_boxes.
ReItem GetReItem(const ReTxtDb& txt, const ImgFeatDb& img, const std::string& sent_id, bool gt, bool training);
// re_collate over items (targets [B] when `training`).
Batch CollateRe(const std::vector<ReItem>& items, bool training);

// --------------------------------------------------------------------- VCR

struct VcrExample {
  std::string id;
  std::vector<int64_t> q;                    // input_ids (the question)
  std::vector<std::vector<int64_t>> as, rs;  // input_ids_as [4], input_ids_rs [4]
  int64_t qa_target = -1, qar_target = -1;
  std::vector<std::string> img_fnames;       // [gt, det]
};

// VcrTxtTokLmdb for one task: ids and lengths from id2len_{qa|qar}.json
// (len ≤ max_txt_len unless −1), txt2img.json, meta.json.
class VcrTxtDb {
 public:
  VcrTxtDb(const std::string& dir, int max_txt_len, const std::string& task);
  ~VcrTxtDb();
  const std::vector<std::string>& ids() const { return ids_; }
  const std::vector<int64_t>& lens() const { return lens_; }
  const std::vector<std::string>& Images(const std::string& id) const;
  VcrExample Get(const std::string& id) const;
  int64_t cls() const { return cls_; }
  int64_t sep() const { return sep_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::unique_ptr<featdb::TxtDbReader> db_;
  std::vector<std::string> ids_;
  std::vector<int64_t> lens_;
  std::map<std::string, std::vector<std::string>> txt2img_;
  int64_t cls_ = 0, sep_ = 0;
};

// The img_dbs of one "gt_dir;det_dir" string as load_img_feat splits it (a
// path containing "gt" is the gt db, read with conf_th −1 and num_bb 100).
struct VcrImgDbs {
  std::shared_ptr<const ImgFeatDb> gt, det;
};
VcrImgDbs OpenVcrImgDbs(const std::string& spec, const ImgDbOptions& options);

// One VCR example's image rows: gt rows, then det rows.
struct VcrImage {
  ImageFeat gt, det;
  bool has_gt = false, has_det = false;
};
VcrImage GetVcrImage(const VcrImgDbs& dbs, const VcrExample& ex);
// Sampler length: tl + nbb_gt + nbb_det.
int64_t VcrLen(const VcrImgDbs& dbs, const VcrTxtDb& txt, size_t i);

// VcrDataset (task qa or qar): 4 rows, target 1 on the labelled choice.
std::vector<RowSpec> VcrTrainRows(const VcrTxtDb& txt, const VcrExample& ex, const VcrImage& img,
                                  const std::string& task, std::vector<int64_t>* targets);
// VcrEvalDataset: 4 QA rows, then QAR rows for the gt answer (`val`) or every answer (`test`).
std::vector<RowSpec> VcrEvalRows(const VcrTxtDb& txt, const VcrExample& ex, const VcrImage& img, bool test_split);

}  // namespace uniter::trainer::data
