// UNITER's ITM datasets (data/itm.py) over one (txt_db, img_db): the id lists
// and maps ItmRankDataset, ItmRankDatasetHardNegFrom{Text,Image},
// ItmValDataset and ItmEvalDataset read, sample_negative, and the batches
// they collate (itm_rank_collate's layout: one row per (text, image) pair).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/data/datasets.h"
#include "trainer/data/py_random.h"
#include "trainer/internal/batch.h"

namespace uniter::trainer::data {

struct ItmDb {
  std::shared_ptr<const TxtTokDb> txt;
  std::shared_ptr<const ImgFeatDb> img;
  std::vector<std::string> ids;                               // texts kept (id2len order)
  std::map<std::string, std::string> txt2img;                 // of `ids`
  std::map<std::string, std::vector<std::string>> img2txts;   // see OpenItmDb
  std::vector<std::string> img_names;                         // img2txts's keys in order
};

// `need_img2txts`: val/test/hard negatives read img2txts.json (its key order
// is the image order); a missing file is a FormatError naming it. Otherwise
// (ItmRankDataset) img2txts is built from txt2img over `ids`, in id order.
ItmDb OpenItmDb(const std::string& txt_dir, const std::string& img_dir, const ImgDbOptions& io, int max_txt_len,
                bool need_img2txts);

// random.sample(range(n), k), CPython's algorithm (pool or set by size).
std::vector<int64_t> PySample(PyRandom& rng, int64_t n, int64_t k);

// data/itm.py's sample_negative: random.sample(pool, k) redrawn until none of
// it is in `ground_truths`. UsageError when k exceeds the pool or the pool
// has fewer than k non-gt entries.
std::vector<std::string> SampleNegative(PyRandom& rng, const std::vector<std::string>& pool,
                                        const std::vector<std::string>& ground_truths, int64_t k);

// [CLS] ids [SEP] of one text.
std::vector<int64_t> TextInputs(const ItmDb& db, const std::string& txt_id);

// itm_rank_collate over (text, image) pairs in order: one row each; reads
// texts and images on up to `threads` threads.
Batch CollatePairs(const ItmDb& db, const std::vector<std::pair<std::string, std::string>>& pairs);
// The same with row i's text and image read from row_dbs[i] (ConcatDataset: a
// batch may hold rows of several training dbs).
Batch CollatePairs(const std::vector<const ItmDb*>& row_dbs, const std::vector<std::pair<std::string, std::string>>& pairs);

// ItmEvalDataset's image order: img_names stably sorted by nbb.
std::vector<std::string> EvalImageOrder(const ItmDb& db);

}  // namespace uniter::trainer::data
