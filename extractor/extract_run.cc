#include "extractor/extract_run.h"

#include <nlohmann/json.hpp>
#include <tbb/flow_graph.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <unordered_map>

#include "common/error.h"
#include "common/progress.h"
#include "common/rejects.h"
#include "extractor/butd_net.h"
#include "extractor/extract_stages.h"
#include "extractor/extractor.h"
#include "extractor/launch.h"
#include "extractor/outputs.h"
#include "extractor/preprocess.h"

namespace uniter::extractor {
namespace {

namespace fs = std::filesystem;
namespace flow = tbb::flow;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<std::string> ListImages(const std::string& images) {
  std::vector<std::string> paths;
  if (fs::is_directory(images)) {
    for (const auto& e : fs::directory_iterator(images)) {
      if (!e.is_regular_file()) continue;
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
      // BUTD-UNITER's generate_npz.py lists GIF and TIFF too: a GIF is a
      // reject (OpenCV cannot read it) rather than silently left out.
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".jpe" || ext == ".png" || ext == ".bmp" || ext == ".webp" ||
          ext == ".gif" || ext == ".tif" || ext == ".tiff")
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

// The output path of shard k of N: img_db and tsv outputs get their own
// (featdb merge / cat join them); npz files of all shards share the folder.
std::string ShardTag(const Shard& s) {
  return s.count > 1 ? ".shard" + std::to_string(s.index) + "of" + std::to_string(s.count) : "";
}
std::string ShardedOut(std::string out, OutputFormat f, const Shard& s) {
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (s.count == 1 || f == OutputFormat::kNpz) return out;
  if (f == OutputFormat::kImgDb) return out + ShardTag(s);
  const fs::path p(out);
  return (p.parent_path() / (p.stem().string() + ShardTag(s) + p.extension().string())).string();
}

void CheckOptions(const ExtractOptions& o) {
  if (o.images.empty() || o.weights.empty() || o.out.empty())
    throw UsageError("extract needs --images, --weights and --out");
  if (o.batch < 1) throw UsageError("--batch must be at least 1");
  if (o.resume && o.force) throw UsageError("--resume and --force exclude each other");
  OutputFormatFromName(o.format);  // throws for an unknown name, before a model loads
}

// This shard's images in input order; duplicates and images without given
// boxes are rejects already. `given` must outlive the items.
std::vector<ExtractItemPtr> ListWork(const ExtractOptions& o, const Shard& shard,
                                     const std::map<std::string, std::vector<float>>& given) {
  std::vector<std::string> all = ListImages(o.images);
  std::vector<ExtractItemPtr> work;
  std::unordered_map<std::string, std::string> first_path;  // id -> file
  for (size_t i = 0; i < all.size(); ++i) {
    if (static_cast<int>(i % shard.count) != shard.index) continue;
    auto it = std::make_shared<ExtractItem>();
    it->seq = work.size();
    it->path = all[i];
    const fs::path p(it->path);
    it->id = o.id_of ? o.id_of(p.stem().string()) : o.key_prefix + p.stem().string();
    if (auto [f, fresh] = first_path.emplace(it->id, it->path); !fresh) {
      it->error = "duplicate image id '" + it->id + "' (same file stem as " + f->second + ")";
    } else if (!o.boxes_json.empty()) {
      auto b = given.find(p.filename().string());
      if (b == given.end()) b = given.find(p.stem().string());
      if (b == given.end() || b->second.empty()) it->error = "no boxes given for this image in " + o.boxes_json;
      else it->boxes = &b->second;
    }
    work.push_back(std::move(it));
  }
  return work;
}

std::unique_ptr<FeatureSink> OpenSink(const ExtractOptions& o, const Shard& shard) {
  const OutputFormat format = OutputFormatFromName(o.format);
  SinkOptions so;
  so.format = format;
  so.out = ShardedOut(o.out, format, shard);
  so.codec = o.codec;
  so.key_suffix = o.key_suffix;
  so.conf_th = o.config.conf_threshold;
  so.max_bb = o.config.max_boxes;
  so.min_bb = o.config.min_boxes;
  so.keep_all = !o.boxes_json.empty();  // every given box, in order
  so.resume = o.resume;
  so.force = o.force;
  so.shard_tag = ShardTag(shard);
  return MakeSink(so);
}

// Resume: marks what the output holds, before the writer runs (LMDB reads
// and writes stay on one thread); without --resume or --force that is an error.
void MarkDone(const ExtractOptions& o, const FeatureSink& sink, std::vector<ExtractItemPtr>& work) {
  for (auto& it : work) {
    if (!sink.Contains(it->id)) continue;
    if (!o.resume && !o.force)
      throw UsageError("'" + it->id + "' is already in the output: pass --resume to skip what is done or --force",
                       sink.path());
    if (o.resume) it->skip = true;
  }
}

}  // namespace

ExtractResult RunExtract(const ExtractOptions& o) {
  CheckOptions(o);
  const auto start = Clock::now();
  const Shard shard = ResolveShard(o.shard);
  ExtractResult result;
  result.shard_index = shard.index;
  result.shard_count = shard.count;
  result.shard_source = shard.source;
  result.devices = ResolveDevices(o.devices);
  for (const auto& d : result.devices) CheckDevice(d);

  std::map<std::string, std::vector<float>> given;
  if (!o.boxes_json.empty()) given = ReadBoxes(o.boxes_json);
  std::vector<ExtractItemPtr> work = ListWork(o, shard, given);

  const std::string prototxt =
      !o.prototxt.empty() ? o.prototxt : o.boxes_json.empty() ? kButdTestPrototxt : kButdTestGtPrototxt;
  std::vector<std::unique_ptr<Extractor>> extractors;
  for (const auto& d : result.devices) {
    ExtractorConfig c = o.config;
    c.device = d;
    extractors.push_back(std::make_unique<Extractor>(prototxt, o.weights, c));
  }
  std::unique_ptr<FeatureSink> sink = OpenSink(o, shard);
  result.output_path = sink->path();
  MarkDone(o, *sink, work);
  result.rejects_path = o.rejects.empty() ? sink->DefaultRejectsPath() : o.rejects;
  RejectsFile rejects(result.rejects_path, o.resume);

  const int threads = o.threads > 0 ? o.threads : tbb::info::default_concurrency();
  ExtractStagesConfig sc;
  sc.config = o.config;
  sc.max_pixels = o.max_pixels;
  sc.batch = o.batch;
  sc.total = work.size();
  // Images between listing and writing: enough to fill a batch per device
  // while the next ones decode.
  sc.tokens = std::max<size_t>(16, 2 * static_cast<size_t>(o.batch) * extractors.size() + 2 * threads);
  for (const auto& e : extractors) sc.extractors.push_back(e.get());
  Progress progress("extract images", work.size(), o.quiet);
  if (o.on_image) progress.OnAdd(o.on_image);
  ExtractCounts counts;
  ExtractStageTimes times;
  sc.sink = sink.get();
  sc.rejects = &rejects;
  sc.progress = &progress;
  sc.counts = &counts;
  sc.times = &times;

  // Our own arena, not tbb::global_control: the thread count is this run's,
  // not the process's.
  tbb::task_arena arena(threads);
  arena.execute([&] {
    flow::graph g;
    std::unique_ptr<ExtractNodes> nodes = AddExtractStages(g, sc);
    flow::input_node<ExtractItemPtr> source(g, ImageSource(std::move(work)));
    flow::make_edge(source, nodes->entry());
    source.activate();
    g.wait_for_all();
  });

  sink->Close();
  progress.Finish();
  result.written = counts.written;
  result.skipped = counts.skipped;
  result.rejected = counts.rejected;
  result.batches = times.batches;
  result.seconds = Since(start);
  result.decode_seconds = times.decode;
  result.network_seconds = times.network;
  result.encode_seconds = times.encode;
  result.write_seconds = times.write;
  return result;
}

}  // namespace uniter::extractor
