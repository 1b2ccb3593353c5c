// Generated NLVR2- and VE-shaped databases whose label follows from a word
// and the images' features (a colour word and a block of ones at the
// colour's feature dims), and VQA-shaped ones over the same images: what
// the trainer's end-to-end tests train on.
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

// VQA-shaped txt_db (keys are integer question ids from `first_qid`), over
// the answers of kVqaAnswers: "what colour" questions (word 12) are answered
// by the image's colour, "is it <colour>" questions (word 13 + colour word
// 10 + q) by yes/no; UNITER-style soft targets give the right answer 1.0 and
// a plausible wrong one 0.3. Returns question_id → {answer index: score}.
inline const std::vector<std::string> kVqaAnswers = {"red", "blue", "yes", "no", "two"};
inline std::map<std::string, std::map<int, double>> WriteVqaTxtDb(const std::string& dir, int first_qid, int n,
                                                           std::mt19937& gen) {
  featdb::TxtDbWriter w(dir);
  std::map<std::string, std::map<int, double>> targets;
  nlohmann::json id2len = nlohmann::json::object(), txt2img = nlohmann::json::object();
  std::uniform_int_distribution<int> filler(20, 99), len(3, 6), img(0, kImages - 1), color(0, kColors - 1);
  for (int i = 0; i < n; ++i) {
    const std::string qid = std::to_string(first_qid + i);
    const int image = img(gen), c = image % kColors, q = color(gen);
    std::vector<int32_t> ids(len(gen));
    for (auto& t : ids) t = filler(gen);
    std::map<int, double> target;
    const size_t at = gen() % (ids.size() - 1);
    if (gen() % 2) {  // what colour is it?
      ids[at] = 12;
      target = {{c, 1.0}, {1 - c, 0.3}};
    } else {  // is it <q>?
      ids[at] = 13;
      ids[at + 1] = 10 + q;
      target = q == c ? std::map<int, double>{{2, 1.0}, {3, 0.3}} : std::map<int, double>{{3, 1.0}, {4, 0.3}};
    }
    featdb::Value labels = featdb::Value::Array(), scores = featdb::Value::Array();
    for (const auto& [l, sc] : target) {
      labels.Append(featdb::Value(l));
      scores.Append(featdb::Value(sc));
    }
    featdb::Value t = featdb::Value::Map();
    t.Set("labels", labels);
    t.Set("scores", scores);
    featdb::Value ex = featdb::Value::Map();
    ex.Set("input_ids", featdb::Value::IntList(ids));
    ex.Set("img_fname", featdb::Value::Str("img" + std::to_string(image) + ".npz"));
    ex.Set("target", t);
    ex.Set("question_id", featdb::Value(first_qid + i));
    w.Put(qid, ex);
    id2len[qid] = ids.size();
    txt2img[qid] = "img" + std::to_string(image) + ".npz";
    targets[qid] = target;
  }
  w.WriteJson("id2len.json", id2len);
  w.WriteJson("txt2img.json", txt2img);
  w.WriteJson("meta.json", {{"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {10, 100}}});
  w.Close();
  return targets;
}

}  // namespace uniter::trainer::testing
