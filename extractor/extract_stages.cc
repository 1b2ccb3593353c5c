#include "extractor/extract_stages.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "extractor/extractor.h"
#include "extractor/image_io.h"
#include "extractor/preprocess.h"

namespace uniter::extractor {
namespace {

namespace flow = tbb::flow;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void AddSeconds(std::atomic<double>& a, double v) {
  double cur = a.load();
  while (!a.compare_exchange_weak(cur, cur + v)) {
  }
}

// The reason of a per-image failure, without the path the rejects line names anyway.
std::string Reason(const std::exception& e, const std::string& path) {
  if (const auto* u = dynamic_cast<const Error*>(&e); u && u->where() == path) return u->message();
  return e.what();
}

uint64_t MinSeq(const std::vector<ExtractItemPtr>& g) {
  uint64_t s = g.front()->seq;
  for (const auto& i : g) s = std::min(s, i->seq);
  return s;
}

}  // namespace

ExtractItemPtr ImageSource::operator()(tbb::flow_control& fc) {
  if (next_ >= items_->size()) {
    fc.stop();
    return {};
  }
  return std::move((*items_)[next_++]);
}

ExtractItemPtr DecodeStage::operator()(ExtractItemPtr it) const {
  if (!it->NeedsWork()) return it;
  const auto t = Clock::now();
  try {
    it->image = ReadImage(it->path, {max_pixels_});
    it->input_size = InputSize(it->image.rows, it->image.cols, config_);
  } catch (const std::exception& e) {
    it->error = Reason(e, it->path);
  }
  AddSeconds(times_->decode, Since(t));
  return it;
}

void Batcher::operator()(const ExtractItemPtr& item, Node::output_ports_type& ports) {
  ++arrivals_;
  max_seq_ = std::max(max_seq_, item->seq);
  if (!item->NeedsWork()) {
    auto b = std::make_shared<ExtractItemBatch>();
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

void Batcher::Emit(Groups::iterator it, Node::output_ports_type& ports) {
  auto b = std::make_shared<ExtractItemBatch>();
  b->items = std::move(it->second);
  std::sort(b->items.begin(), b->items.end(),
            [](const ExtractItemPtr& x, const ExtractItemPtr& y) { return x->seq < y->seq; });
  waiting_ -= b->items.size();
  groups_.erase(it);
  std::get<0>(ports).try_put(b);
}

ExtractItemBatchPtr NetworkStage::operator()(ExtractItemBatchPtr batch) const {
  const auto t = Clock::now();
  auto one = [&](ExtractItem& it) {
    try {
      it.features = it.boxes ? extractor_->ExtractBoxes(it.image, *it.boxes) : extractor_->Extract(it.image);
    } catch (const std::exception& e) {
      it.error = Reason(e, it.path);
    }
  };
  if (batch->items.size() == 1 || batch->items.front()->boxes) {
    for (auto& it : batch->items) one(*it);
  } else {
    std::vector<cv::Mat> images;
    for (const auto& it : batch->items) images.push_back(it->image);
    try {
      std::vector<RegionFeatures> out = extractor_->ExtractBatch(images);
      if (out.size() != images.size()) throw Error("ExtractBatch returned a wrong count");
      for (size_t i = 0; i < out.size(); ++i) batch->items[i]->features = std::move(out[i]);
    } catch (const std::exception&) {
      for (auto& it : batch->items) one(*it);
    }
  }
  for (auto& it : batch->items) it->image.release();
  ++times_->batches;
  AddSeconds(times_->network, Since(t));
  return batch;
}

void EncodeStage::operator()(const ExtractItemBatchPtr& batch, Node::output_ports_type& ports) const {
  const auto t = Clock::now();
  tbb::parallel_for(size_t{0}, batch->items.size(), [&](size_t i) {
    ExtractItem& it = *batch->items[i];
    if (!it.NeedsWork()) return;
    try {
      it.encoded = sink_->Encode(it.id, it.features);
    } catch (const std::exception& e) {
      it.error = Reason(e, it.path);
    }
    it.features = RegionFeatures();
  });
  AddSeconds(times_->encode, Since(t));
  for (auto& it : batch->items) std::get<0>(ports).try_put(std::move(it));
}

flow::continue_msg WriteStage::operator()(ExtractItemPtr it) const {
  const auto t = Clock::now();
  if (it->skip) {
    ++counts_->skipped;
  } else if (!it->error.empty()) {
    rejects_->Add({it->path, 0, it->id, it->error});
    ++counts_->rejected;
  } else {
    sink_->Write(std::move(it->encoded));
    ++counts_->written;
  }
  progress_->Add(1);
  AddSeconds(times_->write, Since(t));
  return flow::continue_msg();
}

flow::receiver<ExtractItemPtr>& ExtractNodes::entry() { return *limiter_; }
flow::sender<flow::continue_msg>& ExtractNodes::exit() { return *writer_; }

std::unique_ptr<ExtractNodes> AddExtractStages(flow::graph& g, const ExtractStagesConfig& c) {
  auto n = std::make_unique<ExtractNodes>();
  n->limiter_ = std::make_unique<flow::limiter_node<ExtractItemPtr>>(g, c.tokens);
  n->decode_ = std::make_unique<flow::function_node<ExtractItemPtr, ExtractItemPtr>>(
      g, flow::unlimited, DecodeStage(c.config, c.max_pixels, c.times));
  // The batcher flushes at half the tokens, so the writer always gets some.
  // Decoded images reach the batcher in input order, so the batches (and with
  // them the BLAS shapes, which change float rounding) depend only on the
  // inputs and --batch, not on which decode finished first.
  n->decoded_in_order_ = std::make_unique<flow::sequencer_node<ExtractItemPtr>>(
      g, [](const ExtractItemPtr& it) { return static_cast<size_t>(it->seq); });
  n->batcher_ = std::make_unique<Batcher::Node>(
      g, flow::serial, Batcher(static_cast<size_t>(c.batch), c.tokens / 2, c.tokens / 2, c.total));
  n->to_network_ = std::make_unique<flow::buffer_node<ExtractItemBatchPtr>>(g);
  // One serial node per device; `rejecting` makes a busy node refuse, so the
  // buffer hands each batch to whichever device is free.
  for (const Extractor* e : c.extractors)
    n->networks_.push_back(std::make_unique<ExtractNodes::NetworkNode>(g, flow::serial, NetworkStage(e, c.times)));
  n->encode_ = std::make_unique<EncodeStage::Node>(g, flow::unlimited, EncodeStage(c.sink, c.times));
  n->in_order_ = std::make_unique<flow::sequencer_node<ExtractItemPtr>>(
      g, [](const ExtractItemPtr& it) { return static_cast<size_t>(it->seq); });
  n->writer_ = std::make_unique<flow::function_node<ExtractItemPtr, flow::continue_msg>>(
      g, flow::serial, WriteStage(c.sink, c.rejects, c.progress, c.counts, c.times));

  flow::make_edge(*n->limiter_, *n->decode_);
  flow::make_edge(*n->decode_, *n->decoded_in_order_);
  flow::make_edge(*n->decoded_in_order_, *n->batcher_);
  flow::make_edge(flow::output_port<0>(*n->batcher_), *n->to_network_);
  flow::make_edge(flow::output_port<1>(*n->batcher_), *n->encode_);
  for (auto& net : n->networks_) {
    flow::make_edge(*n->to_network_, *net);
    flow::make_edge(*net, *n->encode_);
  }
  flow::make_edge(flow::output_port<0>(*n->encode_), *n->in_order_);
  flow::make_edge(*n->in_order_, *n->writer_);
  flow::make_edge(*n->writer_, n->limiter_->decrementer());
  return n;
}

}  // namespace uniter::extractor
