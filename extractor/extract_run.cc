#include "extractor/extract_run.h"

#include <nlohmann/json.hpp>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <opencv2/imgcodecs.hpp>

#include "common/error.h"
#include "common/progress.h"
#include "common/rejects.h"
#include "extractor/extractor.h"
#include "featdb/array.h"
#include "featdb/img_db.h"

namespace uniter::extractor {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<std::string> ListImages(const std::string& images) {
  std::vector<std::string> paths;
  if (fs::is_directory(images)) {
    for (const auto& e : fs::directory_iterator(images)) {
      if (!e.is_regular_file()) continue;
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp")
        paths.push_back(e.path().string());
    }
    std::sort(paths.begin(), paths.end());
  } else {
    std::ifstream in(images);
    if (!in) ThrowErrno("cannot open image list", images);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') paths.push_back(line);
  }
  return paths;
}

std::vector<featdb::Array> ToArrays(const RegionFeatures& r) {
  using featdb::Array;
  const int64_t n = r.num_boxes;
  std::vector<Array> a;
  a.push_back(Array::FromFloat32("features", {n, r.feature_dim}, r.features));
  a.push_back(Array::FromFloat32("norm_bb", {n, 6}, r.norm_bb));
  a.push_back(Array::FromFloat32("conf", {n}, r.conf));
  a.push_back(Array::FromFloat32("soft_labels", {n, r.num_classes}, r.soft_labels));
  a.push_back(Array::FromFloat32("boxes", {n, 4}, r.boxes));
  auto ints = [](std::string name, const std::vector<int32_t>& v) {
    Array x;
    x.name = std::move(name);
    x.dtype = featdb::DType::kInt32;
    x.shape = {static_cast<int64_t>(v.size())};
    x.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
    return x;
  };
  a.push_back(ints("objects_id", r.object_ids));
  a.push_back(Array::FromFloat32("objects_conf", {n}, r.object_conf));
  if (!r.attr_ids.empty()) {
    a.push_back(ints("attrs_id", r.attr_ids));
    a.push_back(Array::FromFloat32("attrs_conf", {n}, r.attr_conf));
  }
  a.push_back(ints("image_h", {r.image_height}));
  a.push_back(ints("image_w", {r.image_width}));
  return a;
}

// Given boxes by image file name and stem.
std::map<std::string, std::vector<float>> ReadBoxes(const std::string& path) {
  std::ifstream in(path);
  if (!in) ThrowErrno("cannot open boxes file", path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw FormatError(std::string("not JSON: ") + e.what(), path);
  }
  if (!j.is_object()) throw FormatError("expected an object {image: [[x1, y1, x2, y2], ...]}", path);
  std::map<std::string, std::vector<float>> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::vector<float> flat;
    if (!it.value().is_array()) throw FormatError("boxes must be a list", path + "[" + it.key() + "]");
    for (const auto& b : it.value()) {
      if (!b.is_array() || b.size() != 4)
        throw FormatError("each box must be [x1, y1, x2, y2]", path + "[" + it.key() + "]");
      for (const auto& v : b) flat.push_back(v.get<float>());
    }
    out[it.key()] = std::move(flat);
  }
  return out;
}

struct Item {
  std::string path, key;
  cv::Mat image;
  std::string error;
  bool skip = false;
  std::string value;
  int nbb = 0;
};

}  // namespace

ExtractResult RunExtract(const ExtractOptions& o) {
  if (o.images.empty() || o.prototxt.empty() || o.weights.empty() || o.out.empty())
    throw UsageError("extract needs --images, --prototxt, --weights and --out");
  if (o.shard_count < 1 || o.shard_index < 0 || o.shard_index >= o.shard_count)
    throw UsageError("--shard k/N needs 0 <= k < N");
  const auto start = Clock::now();
  std::vector<std::string> all = ListImages(o.images);
  std::vector<std::string> paths;
  for (size_t i = 0; i < all.size(); ++i)
    if (static_cast<int>(i % o.shard_count) == o.shard_index) paths.push_back(all[i]);

  const Extractor extractor(o.prototxt, o.weights, o.config);
  featdb::ImgDbOptions db;
  db.codec = featdb::CodecFromName(o.codec);
  db.conf_th = o.config.conf_threshold;
  db.max_bb = o.config.max_boxes;
  db.min_bb = o.config.min_boxes;
  db.resume = o.resume;
  std::map<std::string, std::vector<float>> given;
  if (!o.boxes_json.empty()) {
    given = ReadBoxes(o.boxes_json);
    db.keep_all = true;  // every given box, in order
  }
  db.force = o.force;
  featdb::ImgDbWriter writer(o.out, db);
  ExtractResult result;
  result.db_path = writer.db_path();
  result.rejects_path = o.rejects.empty() ? writer.db_path() + ".rejects.jsonl" : o.rejects;
  RejectsFile rejects(result.rejects_path, o.resume);
  Progress progress("extract", paths.size(), o.quiet);
  std::atomic<double> decode_s{0}, net_s{0}, write_s{0};
  auto add = [](std::atomic<double>& a, double v) {
    double cur = a.load();
    while (!a.compare_exchange_weak(cur, cur + v)) {
    }
  };
  size_t next = 0;
  tbb::parallel_pipeline(
      8, tbb::make_filter<void, std::shared_ptr<Item>>(
             tbb::filter_mode::serial_in_order,
             [&](tbb::flow_control& fc) -> std::shared_ptr<Item> {
               if (next >= paths.size()) {
                 fc.stop();
                 return nullptr;
               }
               auto item = std::make_shared<Item>();
               item->path = paths[next++];
               item->key = o.key_prefix + fs::path(item->path).stem().string() + o.key_suffix;
               item->skip = o.resume && writer.Contains(item->key);
               return item;
             }) &
             tbb::make_filter<std::shared_ptr<Item>, std::shared_ptr<Item>>(
                 tbb::filter_mode::parallel,
                 [&](std::shared_ptr<Item> item) {
                   if (item->skip) return item;
                   const auto t = Clock::now();
                   try {
                     if (fs::file_size(item->path) == 0) throw Error("empty file");
                     item->image = cv::imread(item->path, cv::IMREAD_COLOR);
                     if (item->image.empty()) throw Error("not a decodable image");
                   } catch (const std::exception& e) {
                     item->error = e.what();
                   }
                   add(decode_s, Since(t));
                   return item;
                 }) &
             // The network already uses every core; one image at a time.
             tbb::make_filter<std::shared_ptr<Item>, std::shared_ptr<Item>>(
                 tbb::filter_mode::serial_out_of_order,
                 [&](std::shared_ptr<Item> item) {
                   if (item->skip || !item->error.empty()) return item;
                   const auto t = Clock::now();
                   try {
                     RegionFeatures r;
                     if (o.boxes_json.empty()) {
                       r = extractor.Extract(item->image);
                     } else {
                       const fs::path p(item->path);
                       auto it = given.find(p.filename().string());
                       if (it == given.end()) it = given.find(p.stem().string());
                       if (it == given.end() || it->second.empty())
                         throw Error("no boxes given for this image in " + o.boxes_json);
                       r = extractor.ExtractBoxes(item->image, it->second);
                     }
                     item->image.release();
                     const featdb::PreparedRecord rec = featdb::PrepareImgRecord(ToArrays(r), db);
                     item->value = featdb::EncodeImgRecord(rec.arrays, db.codec, db);
                     item->nbb = rec.nbb;
                   } catch (const std::exception& e) {
                     item->error = e.what();
                   }
                   add(net_s, Since(t));
                   return item;
                 }) &
             tbb::make_filter<std::shared_ptr<Item>, void>(
                 tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Item> item) {
                   const auto t = Clock::now();
                   if (item->skip) {
                     ++result.skipped;
                   } else if (!item->error.empty()) {
                     rejects.Add({item->path, 0, item->key, item->error});
                     ++result.rejected;
                   } else {
                     writer.PutEncoded(item->key, std::move(item->value), item->nbb);
                     ++result.written;
                   }
                   progress.Add(1);
                   add(write_s, Since(t));
                 }));
  writer.Close();
  progress.Finish();
  result.seconds = Since(start);
  result.decode_seconds = decode_s;
  result.network_seconds = net_s;
  result.write_seconds = write_s;
  return result;
}

}  // namespace uniter::extractor
