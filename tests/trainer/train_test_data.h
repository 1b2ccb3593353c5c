// Generated NLVR2- and VE-shaped databases whose label follows from a word
// and the images' features (a colour word and a block of ones at the
// colour's feature dims): what the trainer's end-to-end tests train on.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "featdb/img_db.h"
#include "featdb/txt_db.h"

namespace uniter::trainer::testing {

constexpr int kColors = 2;
constexpr int kImages = 48;
constexpr int kBoxes = 10;
constexpr int kFeatDim = 2048;  // UNITER's IMG_DIM

// Image i has colour i % kColors: its boxes carry a block of ones at the
// colour's 64 dims (plus noise everywhere).
inline void WriteImgDb(const std::string& dir, std::mt19937& gen) {
  featdb::ImgDbOptions io;  // conf_th 0.2, max 100, min 10: nbb = 10
  featdb::ImgDbWriter w(dir, io);
  std::normal_distribution<float> noise(0.f, 0.05f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (int i = 0; i < kImages; ++i) {
    std::vector<float> feat(kBoxes * kFeatDim), bb(kBoxes * 6), conf(kBoxes, 0.9f);
    for (auto& f : feat) f = noise(gen);
    for (int b = 0; b < kBoxes; ++b) {
      for (int d = 0; d < 64; ++d) feat[b * kFeatDim + (i % kColors) * 64 + d] += 1.f;
      float x = unit(gen) * 0.5f, y = unit(gen) * 0.5f, ww = 0.2f + unit(gen) * 0.3f, hh = 0.2f + unit(gen) * 0.3f;
      float* r = &bb[b * 6];
      r[0] = x, r[1] = y, r[2] = x + ww, r[3] = y + hh, r[4] = ww, r[5] = hh;
    }
    w.Put("img" + std::to_string(i) + ".npz", {featdb::Array::FromFloat32("features", {kBoxes, kFeatDim}, feat),
                                                featdb::Array::FromFloat32("norm_bb", {kBoxes, 6}, bb),
                                                featdb::Array::FromFloat32("conf", {kBoxes}, conf)});
  }
  w.Close();
}

// NLVR2-shaped txt_db: filler words plus one colour word (id 10 + colour);
// label True iff one of the two images has that colour (NLVR2's "one of
// the images shows ..."). Returns identifier → label.
// VE-shaped (`ve`): one image, soft target {labels: [entailment (1) if the
// image has the colour, else contradiction (0)], scores: [1.0]}.
inline std::map<std::string, bool> WriteTxtDb(const std::string& dir, const std::string& split, int n,
                                              std::mt19937& gen, bool ve = false) {
  featdb::TxtDbWriter w(dir);
  std::map<std::string, bool> labels;
  nlohmann::json id2len = nlohmann::json::object(), txt2img = nlohmann::json::object();
  std::uniform_int_distribution<int> filler(20, 99), len(2, 5), color(0, kColors - 1), img(0, kImages - 1);
  for (int i = 0; i < n; ++i) {
    const std::string id = split + "-" + std::to_string(i / 2) + "-" + std::to_string(i % 2) + "-0";
    const int c = color(gen);
    const bool label = gen() % 2 == 0;
    // True: one side (either) shows the colour; False: neither does.
    int left = img(gen), right = img(gen);
    while (left % kColors == c) left = img(gen);
    while (right % kColors == c) right = img(gen);
    if (label) (gen() % 2 ? left : right) = c + kColors * static_cast<int>(gen() % (kImages / kColors));
    std::vector<int32_t> ids(len(gen));
    for (auto& t : ids) t = filler(gen);
    ids[gen() % ids.size()] = 10 + c;
    if (ve && label && left % kColors != c) std::swap(left, right);
    std::vector<std::string> fnames = {"img" + std::to_string(left) + ".npz"};
    if (!ve) fnames.push_back("img" + std::to_string(right) + ".npz");
    featdb::Value ex = featdb::Value::Map();
    ex.Set("input_ids", featdb::Value::IntList(ids));
    if (ve) {
      ex.Set("img_fname", featdb::Value::Str(fnames[0]));
      featdb::Value target = featdb::Value::Map();
      target.Set("labels", featdb::Value::Array({featdb::Value(label ? 1 : 0)}));
      target.Set("scores", featdb::Value::Array({featdb::Value(1.0)}));
      ex.Set("target", target);
    } else {
      featdb::Value fl = featdb::Value::Array();
      for (const auto& f : fnames) fl.Append(featdb::Value::Str(f));
      ex.Set("img_fname", fl);
      ex.Set("target", featdb::Value(label ? 1 : 0));
    }
    ex.Set("identifier", featdb::Value::Str(id));
    w.Put(id, ex);
    id2len[id] = ids.size();
    txt2img[id] = ve ? nlohmann::json(fnames[0]) : nlohmann::json(fnames);
    labels[id] = label;
  }
  w.WriteJson("id2len.json", id2len);
  w.WriteJson("txt2img.json", txt2img);
  w.WriteJson("meta.json", {{"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {10, 100}}});
  w.Close();
  return labels;
}

}  // namespace uniter::trainer::testing
