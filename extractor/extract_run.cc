#include "extractor/extract_run.h"

#include <nlohmann/json.hpp>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>

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
#include "extractor/extractor.h"
#include "extractor/image_io.h"
#include "extractor/launch.h"
#include "extractor/outputs.h"
#include "extractor/preprocess.h"

namespace uniter::extractor {
namespace {

namespace fs = std::filesystem;
namespace flow = tbb::flow;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void AddSeconds(std::atomic<double>& a, double v) {
  double cur = a.load();
  while (!a.compare_exchange_weak(cur, cur + v)) {
  }
}

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

// The reason of a per-image failure, without the path the rejects line names anyway.
std::string Reason(const std::exception& e, const std::string& path) {
  if (const auto* u = dynamic_cast<const Error*>(&e); u && u->where() == path) return u->message();
  return e.what();
}

struct Item {
  uint64_t seq = 0;
  std::string path, id;
  const std::vector<float>* boxes = nullptr;  // given-box mode
  bool skip = false;                          // already in the output (--resume)
  std::string error;                          // set: a reject
  cv::Mat image;
  std::pair<int, int> input_size{0, 0};
  RegionFeatures features;
  EncodedImage encoded;
  bool NeedsWork() const { return !skip && error.empty(); }
};
using ItemPtr = std::shared_ptr<Item>;
struct Batch {
  std::vector<ItemPtr> items;
};
using BatchPtr = std::shared_ptr<Batch>;

// Groups decoded images by network input size. Serial (one flow node).
// Pass-through items (skipped, rejected) go out at once; a group goes out
// when it holds `batch` images, when its oldest image is `max_age` sequence
// numbers behind the newest arrival or more than `max_waiting` images wait
// (so the ordered writer, which holds the limiter's tokens, never starves),
// and at the last arrival. Every item passes here exactly once.
class Batcher {
 public:
  using Node = flow::multifunction_node<ItemPtr, std::tuple<BatchPtr, BatchPtr>>;
  Batcher(size_t batch, uint64_t max_age, size_t max_waiting, uint64_t total)
      : batch_(batch), max_age_(max_age), max_waiting_(max_waiting), total_(total) {}

  void operator()(const ItemPtr& item, Node::output_ports_type& ports) {
    ++arrivals_;
    max_seq_ = std::max(max_seq_, item->seq);
    if (!item->NeedsWork()) {
      auto b = std::make_shared<Batch>();
      b->items.push_back(item);
      std::get<1>(ports).try_put(b);
    } else {
      auto& group = groups_[item->input_size];
      group.push_back(item);
      ++waiting_;
      if (group.size() >= batch_) Emit(groups_.find(item->input_size), ports);
    }
    while (!groups_.empty()) {
      auto oldest = groups_.begin();
      uint64_t oldest_seq = MinSeq(oldest->second);
      for (auto it = groups_.begin(); it != groups_.end(); ++it)
        if (const uint64_t s = MinSeq(it->second); s < oldest_seq) oldest = it, oldest_seq = s;
      if (arrivals_ < total_ && oldest_seq + max_age_ > max_seq_ && waiting_ <= max_waiting_) break;
      Emit(oldest, ports);
    }
  }

 private:
  using Groups = std::map<std::pair<int, int>, std::vector<ItemPtr>>;
  static uint64_t MinSeq(const std::vector<ItemPtr>& g) {
    uint64_t s = g.front()->seq;
    for (const auto& i : g) s = std::min(s, i->seq);
    return s;
  }
  void Emit(Groups::iterator it, Node::output_ports_type& ports) {
    auto b = std::make_shared<Batch>();
    b->items = std::move(it->second);
    std::sort(b->items.begin(), b->items.end(), [](const ItemPtr& x, const ItemPtr& y) { return x->seq < y->seq; });
    waiting_ -= b->items.size();
    groups_.erase(it);
    std::get<0>(ports).try_put(b);
  }

  size_t batch_;
  uint64_t max_age_;
  size_t max_waiting_;
  uint64_t total_;
  uint64_t arrivals_ = 0, max_seq_ = 0;
  size_t waiting_ = 0;
  Groups groups_;
};

// One network call for a batch: ExtractBatch for images of one input size;
// when it throws (one bad image spoils the batch), each image alone, so only
// the bad one becomes a reject.
void RunNetwork(const Extractor& extractor, Batch& batch) {
  auto one = [&](Item& it) {
    try {
      it.features = it.boxes ? extractor.ExtractBoxes(it.image, *it.boxes) : extractor.Extract(it.image);
    } catch (const std::exception& e) {
      it.error = Reason(e, it.path);
    }
  };
  if (batch.items.size() == 1 || batch.items.front()->boxes) {
    for (auto& it : batch.items) one(*it);
  } else {
    std::vector<cv::Mat> images;
    for (const auto& it : batch.items) images.push_back(it->image);
    try {
      std::vector<RegionFeatures> out = extractor.ExtractBatch(images);
      if (out.size() != images.size()) throw Error("ExtractBatch returned a wrong count");
      for (size_t i = 0; i < out.size(); ++i) batch.items[i]->features = std::move(out[i]);
    } catch (const std::exception&) {
      for (auto& it : batch.items) one(*it);
    }
  }
  for (auto& it : batch.items) it->image.release();
}

}  // namespace

ExtractResult RunExtract(const ExtractOptions& o) {
  if (o.images.empty() || o.prototxt.empty() || o.weights.empty() || o.out.empty())
    throw UsageError("extract needs --images, --prototxt, --weights and --out");
  if (o.batch < 1) throw UsageError("--batch must be at least 1");
  if (o.resume && o.force) throw UsageError("--resume and --force exclude each other");
  const auto start = Clock::now();
  const OutputFormat format = OutputFormatFromName(o.format);
  const Shard shard = ResolveShard(o.shard);
  ExtractResult result;
  result.shard_index = shard.index;
  result.shard_count = shard.count;
  result.shard_source = shard.source;
  result.devices = ResolveDevices(o.devices);
  for (const auto& d : result.devices) CheckDevice(d);

  std::map<std::string, std::vector<float>> given;
  if (!o.boxes_json.empty()) given = ReadBoxes(o.boxes_json);

  std::vector<std::string> all = ListImages(o.images);
  std::vector<ItemPtr> work;
  std::unordered_map<std::string, std::string> first_path;  // id -> file
  for (size_t i = 0; i < all.size(); ++i) {
    if (static_cast<int>(i % shard.count) != shard.index) continue;
    auto it = std::make_shared<Item>();
    it->seq = work.size();
    it->path = all[i];
    const fs::path p(it->path);
    it->id = o.key_prefix + p.stem().string();
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

  std::vector<std::unique_ptr<Extractor>> extractors;
  for (const auto& d : result.devices) {
    ExtractorConfig c = o.config;
    c.device = d;
    extractors.push_back(std::make_unique<Extractor>(o.prototxt, o.weights, c));
  }

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
  std::unique_ptr<FeatureSink> sink = MakeSink(so);
  result.output_path = sink->path();
  // Resume: checked here, before the writer runs (LMDB reads and writes stay on one thread).
  for (auto& it : work) {
    if (!sink->Contains(it->id)) continue;
    if (!o.resume && !o.force)
      throw UsageError("'" + it->id + "' is already in the output: pass --resume to skip what is done or --force",
                       sink->path());
    if (o.resume) it->skip = true;
  }
  result.rejects_path = o.rejects.empty() ? sink->DefaultRejectsPath() : o.rejects;
  RejectsFile rejects(result.rejects_path, o.resume);

  std::unique_ptr<tbb::global_control> limit;
  if (o.threads > 0)
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  static_cast<size_t>(o.threads));
  const size_t threads = o.threads > 0 ? static_cast<size_t>(o.threads) : tbb::info::default_concurrency();
  // Images between listing and writing: enough to fill a batch per device
  // while the next ones decode; the batcher flushes at half of it.
  const size_t tokens = std::max<size_t>(16, 2 * static_cast<size_t>(o.batch) * extractors.size() + 2 * threads);

  Progress progress("extract images", work.size(), o.quiet);
  std::atomic<double> decode_s{0}, net_s{0}, encode_s{0}, write_s{0};
  std::atomic<uint64_t> batches{0};
  size_t next = 0;

  flow::graph g;
  flow::input_node<ItemPtr> source(g, [&](tbb::flow_control& fc) -> ItemPtr {
    if (next >= work.size()) {
      fc.stop();
      return {};
    }
    return std::move(work[next++]);
  });
  flow::limiter_node<ItemPtr> limiter(g, tokens);
  flow::function_node<ItemPtr, ItemPtr> decode(g, flow::unlimited, [&](ItemPtr it) {
    if (!it->NeedsWork()) return it;
    const auto t = Clock::now();
    try {
      it->image = ReadImage(it->path, {o.max_pixels});
      it->input_size = InputSize(it->image.rows, it->image.cols, o.config);
    } catch (const std::exception& e) {
      it->error = Reason(e, it->path);
    }
    AddSeconds(decode_s, Since(t));
    return it;
  });
  Batcher::Node batcher(g, flow::serial, Batcher(static_cast<size_t>(o.batch), tokens / 2, tokens / 2, work.size()));
  flow::buffer_node<BatchPtr> to_network(g);
  // One serial node per device; `rejecting` makes a busy node refuse, so the
  // buffer hands each batch to whichever device is free.
  std::vector<std::unique_ptr<flow::function_node<BatchPtr, BatchPtr, flow::rejecting>>> networks;
  for (const auto& ex : extractors) {
    const Extractor* e = ex.get();
    networks.push_back(std::make_unique<flow::function_node<BatchPtr, BatchPtr, flow::rejecting>>(
        g, flow::serial, [&, e](BatchPtr b) {
          const auto t = Clock::now();
          RunNetwork(*e, *b);
          ++batches;
          AddSeconds(net_s, Since(t));
          return b;
        }));
  }
  using EncodeNode = flow::multifunction_node<BatchPtr, std::tuple<ItemPtr>>;
  EncodeNode encode(g, flow::unlimited, [&](const BatchPtr& b, EncodeNode::output_ports_type& ports) {
    const auto t = Clock::now();
    tbb::parallel_for(size_t{0}, b->items.size(), [&](size_t i) {
      Item& it = *b->items[i];
      if (!it.NeedsWork()) return;
      try {
        it.encoded = sink->Encode(it.id, it.features);
      } catch (const std::exception& e) {
        it.error = Reason(e, it.path);
      }
      it.features = RegionFeatures();
    });
    AddSeconds(encode_s, Since(t));
    for (auto& it : b->items) std::get<0>(ports).try_put(std::move(it));
  });
  flow::sequencer_node<ItemPtr> in_order(g, [](const ItemPtr& it) { return static_cast<size_t>(it->seq); });
  flow::function_node<ItemPtr, flow::continue_msg> writer(g, flow::serial, [&](ItemPtr it) {
    const auto t = Clock::now();
    if (it->skip) {
      ++result.skipped;
    } else if (!it->error.empty()) {
      rejects.Add({it->path, 0, it->id, it->error});
      ++result.rejected;
    } else {
      sink->Write(std::move(it->encoded));
      ++result.written;
    }
    progress.Add(1);
    AddSeconds(write_s, Since(t));
    return flow::continue_msg();
  });

  flow::make_edge(source, limiter);
  flow::make_edge(limiter, decode);
  flow::make_edge(decode, batcher);
  flow::make_edge(flow::output_port<0>(batcher), to_network);
  flow::make_edge(flow::output_port<1>(batcher), encode);
  for (auto& n : networks) {
    flow::make_edge(to_network, *n);
    flow::make_edge(*n, encode);
  }
  flow::make_edge(flow::output_port<0>(encode), in_order);
  flow::make_edge(in_order, writer);
  flow::make_edge(writer, limiter.decrementer());
  source.activate();
  g.wait_for_all();

  sink->Close();
  progress.Finish();
  result.batches = batches;
  result.seconds = Since(start);
  result.decode_seconds = decode_s;
  result.network_seconds = net_s;
  result.encode_seconds = encode_s;
  result.write_seconds = write_s;
  return result;
}

}  // namespace uniter::extractor
