// The stages of `uniter extract` as objects, and the builder that wires them
// into a tbb::flow::graph the caller owns (RunExtract's, or a larger
// pipeline's):
//
//   entry (limiter) -> DecodeStage (parallel) -> sequencer -> Batcher (serial) ->
//   NetworkStage (one serial node per device) -> EncodeStage (parallel) ->
//   sequencer (input order) -> WriteStage (serial) -> exit
//
// Items enter `entry` in sequence order (seq 0, 1, 2, ...); each leaves
// through the writer exactly once, written, skipped or rejected, and the
// writer gives back its limiter token. Every stage catches a per-image
// failure and turns it into the item's `error`; only a failure of the output
// itself (disk full) propagates out of graph::wait_for_all.
#pragma once

#include <tbb/flow_graph.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

#include "common/progress.h"
#include "common/rejects.h"
#include "extractor/config.h"
#include "extractor/outputs.h"
#include "extractor/region_features.h"

namespace uniter::extractor {

class Extractor;

// One image on its way through the stages.
struct ExtractItem {
  uint64_t seq = 0;                           // position in the input order, from 0
  std::string path, id;
  const std::vector<float>* boxes = nullptr;  // given-box mode; owned by the caller
  bool skip = false;                          // already in the output (--resume)
  std::string error;                          // set: a reject
  cv::Mat image;                              // DecodeStage -> NetworkStage
  std::pair<int, int> input_size{0, 0};       // network input (height, width)
  RegionFeatures features;                    // NetworkStage -> EncodeStage
  EncodedImage encoded;                       // EncodeStage -> WriteStage
  bool NeedsWork() const { return !skip && error.empty(); }
};
using ExtractItemPtr = std::shared_ptr<ExtractItem>;

// Images of one network input size (or one pass-through item), in seq order.
struct ExtractItemBatch {
  std::vector<ExtractItemPtr> items;
};
using ExtractItemBatchPtr = std::shared_ptr<ExtractItemBatch>;

// Seconds summed over threads, and counters; stages add to them concurrently.
struct ExtractStageTimes {
  std::atomic<double> decode{0}, network{0}, encode{0}, write{0};
  std::atomic<uint64_t> batches{0};
};

// The reader: hands out the items in seq order, then stops. Not
// thread-safe: an input_node's body.
class ImageSource {
 public:
  explicit ImageSource(std::vector<ExtractItemPtr> items)
      : items_(std::make_shared<std::vector<ExtractItemPtr>>(std::move(items))) {}
  ExtractItemPtr operator()(tbb::flow_control& fc);

 private:
  std::shared_ptr<std::vector<ExtractItemPtr>> items_;  // shared: flow nodes copy their bodies
  size_t next_ = 0;
};

// Reads each image file once and decodes it as cv2.imread does (image_io.h).
// Thread-safe: a const operator().
class DecodeStage {
 public:
  DecodeStage(const ExtractorConfig& config, int64_t max_pixels, ExtractStageTimes* times)
      : config_(config), max_pixels_(max_pixels), times_(times) {}
  ExtractItemPtr operator()(ExtractItemPtr item) const;

 private:
  ExtractorConfig config_;
  int64_t max_pixels_;
  ExtractStageTimes* times_;
};

// Groups decoded images by network input size. Not thread-safe: a serial
// node's body. Fed in seq order, its batches depend only on the inputs and
// `batch`. Pass-through items (skipped, rejected) go out at once on port
// 1; a group goes out on port 0 when it holds `batch` images, when its oldest
// image is `max_age` sequence numbers behind the newest arrival or more than
// `max_waiting` images wait (so the ordered writer, which holds the limiter's
// tokens, never starves), and at the `total`-th arrival. Every item passes
// here exactly once.
class Batcher {
 public:
  using Node = tbb::flow::multifunction_node<ExtractItemPtr, std::tuple<ExtractItemBatchPtr, ExtractItemBatchPtr>>;
  Batcher(size_t batch, uint64_t max_age, size_t max_waiting, uint64_t total)
      : batch_(batch), max_age_(max_age), max_waiting_(max_waiting), total_(total) {}
  void operator()(const ExtractItemPtr& item, Node::output_ports_type& ports);

 private:
  using Groups = std::map<std::pair<int, int>, std::vector<ExtractItemPtr>>;
  void Emit(Groups::iterator it, Node::output_ports_type& ports);

  size_t batch_;
  uint64_t max_age_;
  size_t max_waiting_;
  uint64_t total_;
  uint64_t arrivals_ = 0, max_seq_ = 0;
  size_t waiting_ = 0;
  Groups groups_;
};

// One network call per batch on one device: ExtractBatch for images of one
// input size; when it throws (one bad image spoils the batch), each image
// alone, so only the bad one becomes a reject. Releases the decoded images.
// One call at a time per Extractor (a serial node).
class NetworkStage {
 public:
  NetworkStage(const Extractor* extractor, ExtractStageTimes* times) : extractor_(extractor), times_(times) {}
  ExtractItemBatchPtr operator()(ExtractItemBatchPtr batch) const;

 private:
  const Extractor* extractor_;
  ExtractStageTimes* times_;
};

// Encodes each item's features into the sink's value (FeatureSink::Encode),
// in parallel over the batch, then sends the items on one by one.
// Thread-safe.
class EncodeStage {
 public:
  using Node = tbb::flow::multifunction_node<ExtractItemBatchPtr, std::tuple<ExtractItemPtr>>;
  EncodeStage(const FeatureSink* sink, ExtractStageTimes* times) : sink_(sink), times_(times) {}
  void operator()(const ExtractItemBatchPtr& batch, Node::output_ports_type& ports) const;

 private:
  const FeatureSink* sink_;
  ExtractStageTimes* times_;
};

// What the writer did, for the caller's summary.
struct ExtractCounts {
  uint64_t written = 0, skipped = 0, rejected = 0;
};

// Writes items in seq order: values to the sink, failures to the rejects
// file. Not thread-safe: a serial node's body, the only user of `sink`'s
// Write and of `rejects`.
class WriteStage {
 public:
  WriteStage(FeatureSink* sink, RejectsFile* rejects, Progress* progress, ExtractCounts* counts,
             ExtractStageTimes* times)
      : sink_(sink), rejects_(rejects), progress_(progress), counts_(counts), times_(times) {}
  tbb::flow::continue_msg operator()(ExtractItemPtr item) const;

 private:
  FeatureSink* sink_;
  RejectsFile* rejects_;
  Progress* progress_;
  ExtractCounts* counts_;
  ExtractStageTimes* times_;
};

// What the stages share; every pointer must outlive the graph's run.
struct ExtractStagesConfig {
  ExtractorConfig config;
  int64_t max_pixels = 0;
  int batch = 1;
  uint64_t total = 0;   // items that will enter (the batcher's last flush)
  size_t tokens = 16;   // items between entry and writer at most
  std::vector<const Extractor*> extractors;  // one network node each
  FeatureSink* sink = nullptr;
  RejectsFile* rejects = nullptr;
  Progress* progress = nullptr;
  ExtractCounts* counts = nullptr;
  ExtractStageTimes* times = nullptr;
};

// The nodes AddExtractStages made: owned here, run by the caller's graph.
class ExtractNodes {
 public:
  // Put items here in seq order (an input_node edge, or try_put).
  tbb::flow::receiver<ExtractItemPtr>& entry();
  // One continue_msg per item written, skipped or rejected.
  tbb::flow::sender<tbb::flow::continue_msg>& exit();

 private:
  friend std::unique_ptr<ExtractNodes> AddExtractStages(tbb::flow::graph& g, const ExtractStagesConfig& c);
  using NetworkNode = tbb::flow::function_node<ExtractItemBatchPtr, ExtractItemBatchPtr, tbb::flow::rejecting>;
  std::unique_ptr<tbb::flow::limiter_node<ExtractItemPtr>> limiter_;
  std::unique_ptr<tbb::flow::function_node<ExtractItemPtr, ExtractItemPtr>> decode_;
  std::unique_ptr<tbb::flow::sequencer_node<ExtractItemPtr>> decoded_in_order_;
  std::unique_ptr<Batcher::Node> batcher_;
  std::unique_ptr<tbb::flow::buffer_node<ExtractItemBatchPtr>> to_network_;
  std::vector<std::unique_ptr<NetworkNode>> networks_;
  std::unique_ptr<EncodeStage::Node> encode_;
  std::unique_ptr<tbb::flow::sequencer_node<ExtractItemPtr>> in_order_;
  std::unique_ptr<tbb::flow::function_node<ExtractItemPtr, tbb::flow::continue_msg>> writer_;
};

// Adds the extract stages to `g` and wires them; see the file comment.
std::unique_ptr<ExtractNodes> AddExtractStages(tbb::flow::graph& g, const ExtractStagesConfig& c);

}  // namespace uniter::extractor
