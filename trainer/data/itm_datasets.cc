#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_set>

#include "common/error.h"
#include "trainer/data/internal/collate.h"
#include "trainer/data/internal/itm.h"

namespace uniter::trainer::data {
namespace {

nlohmann::ordered_json ReadJson(const std::string& path, const std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError("missing " + why, path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::ordered_json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("does not parse: ") + e.what(), path);
  }
}

}  // namespace

ItmDb OpenItmDb(const std::string& txt_dir, const std::string& img_dir, const ImgDbOptions& io, int max_txt_len,
                bool need_img2txts) {
  ItmDb db;
  db.txt = std::make_shared<const TxtTokDb>(txt_dir, max_txt_len);
  // Checked before the img_db so that a txt_db lacking its image list says so first.
  nlohmann::ordered_json img2txts;
  if (need_img2txts)
    img2txts = ReadJson(txt_dir + "/img2txts.json",
                        "img2txts.json (ITM evaluation and hard negatives need each image's texts)");
  db.img = std::make_shared<const ImgFeatDb>(img_dir, io);
  db.ids = db.txt->ids();
  std::map<std::string, std::vector<std::string>> t2i;
  try {
    t2i = db.txt->Txt2Img();
  } catch (const FormatError& e) {
    throw FormatError(e.message() + " (ITM needs each text's image)", e.where());
  }
  for (const std::string& id : db.ids) {
    auto it = t2i.find(id);
    if (it == t2i.end() || it->second.size() != 1)
      throw FormatError("text '" + id + "' has no single image in txt2img.json", txt_dir + "/txt2img.json");
    db.txt2img[id] = it->second[0];
  }
  if (need_img2txts) {
    try {
      for (auto it = img2txts.begin(); it != img2txts.end(); ++it) {
        db.img_names.push_back(it.key());
        db.img2txts[it.key()] = it.value().get<std::vector<std::string>>();
      }
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(std::string("img2txts.json values must be lists of text ids: ") + e.what(),
                        txt_dir + "/img2txts.json");
    }
  } else {
    for (const std::string& id : db.ids) {
      auto& txts = db.img2txts[db.txt2img[id]];
      if (txts.empty()) db.img_names.push_back(db.txt2img[id]);
      txts.push_back(id);
    }
  }
  if (db.img_names.empty()) throw FormatError("no images", txt_dir);
  for (const std::string& f : db.img_names) db.img->Nbb(f);  // every image known to the img_db
  return db;
}

std::vector<int64_t> PySample(PyRandom& rng, int64_t n, int64_t k) {
  if (k < 0 || k > n) throw UsageError("cannot sample " + std::to_string(k) + " of " + std::to_string(n));
  std::vector<int64_t> out(static_cast<size_t>(k));
  int64_t setsize = 21;
  if (k > 5) setsize += static_cast<int64_t>(std::pow(4.0, std::ceil(std::log(3.0 * k) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<int64_t> pool(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pool[i] = i;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = static_cast<int64_t>(rng.RandBelow(static_cast<uint64_t>(n - i)));
      out[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<int64_t> selected;
    for (int64_t i = 0; i < k; ++i) {
      int64_t j = static_cast<int64_t>(rng.RandBelow(static_cast<uint64_t>(n)));
      while (selected.count(j)) j = static_cast<int64_t>(rng.RandBelow(static_cast<uint64_t>(n)));
      selected.insert(j);
      out[i] = j;
    }
  }
  return out;
}

std::vector<std::string> SampleNegative(PyRandom& rng, const std::vector<std::string>& pool,
                                        const std::vector<std::string>& ground_truths, int64_t k) {
  const std::set<std::string> gt(ground_truths.begin(), ground_truths.end());
  int64_t free = 0;
  for (const std::string& p : pool) free += !gt.count(p);
  if (free < k)
    throw UsageError("cannot sample " + std::to_string(k) + " negatives from " + std::to_string(free) +
                     " candidates (negative_size too large for the db)");
  // outputs = ground_truths[:1], redrawn while it overlaps the ground truths.
  std::vector<std::string> out(ground_truths.begin(), ground_truths.begin() + std::min<size_t>(1, ground_truths.size()));
  auto overlaps = [&] {
    return std::any_of(out.begin(), out.end(), [&](const std::string& s) { return gt.count(s) > 0; });
  };
  while (overlaps()) {
    out.clear();
    for (int64_t j : PySample(rng, static_cast<int64_t>(pool.size()), k)) out.push_back(pool[j]);
  }
  return out;
}

std::vector<int64_t> TextInputs(const ItmDb& db, const std::string& txt_id) {
  const TextExample t = db.txt->Get(txt_id);
  std::vector<int64_t> ids;
  ids.reserve(t.input_ids.size() + 2);
  ids.push_back(db.txt->cls());
  ids.insert(ids.end(), t.input_ids.begin(), t.input_ids.end());
  ids.push_back(db.txt->sep());
  return ids;
}

Batch CollatePairs(const ItmDb& db, const std::vector<std::pair<std::string, std::string>>& pairs) {
  return CollatePairs(std::vector<const ItmDb*>(pairs.size(), &db), pairs);
}

Batch CollatePairs(const std::vector<const ItmDb*>& row_dbs, const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<Example> examples(pairs.size());
  tbb::parallel_for(size_t{0}, pairs.size(), [&](size_t i) {
    examples[i].id = pairs[i].first;
    examples[i].input_ids = TextInputs(*row_dbs[i], pairs[i].first);
    examples[i].images.push_back(row_dbs[i]->img->Get(pairs[i].second));
  });
  DatasetOptions o;
  o.task = Task::kVqa;  // one image per row, no type ids, no targets
  o.use_img_type = false;
  Batch b = Collate(o, 0, examples);
  b.sample_size = static_cast<int64_t>(pairs.size());
  return b;
}

std::vector<std::string> EvalImageOrder(const ItmDb& db) {
  std::vector<std::string> order = db.img_names;
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return db.img->Nbb(a) < db.img->Nbb(b); });
  return order;
}

}  // namespace uniter::trainer::data
