#include "extractor/synthetic_model.h"

#include <cmath>
#include <random>
#include <regex>
#include <set>

#include "common/error.h"
#include "extractor/caffe.pb.h"
#include "extractor/caffe_model.h"

namespace uniter::extractor {
namespace {

// Layers whose output size is a label space, kept at full size.
bool KeepsWidth(const std::string& name) {
  return name == "rpn_cls_score" || name == "rpn_bbox_pred" || name == "cls_score" ||
         name == "bbox_pred" || name == "attr_score";
}

// Drops res4 blocks beyond `keep` (res4a counts as one) and rewires readers of
// dropped blobs to the last kept block's output.
void DropRes4Blocks(caffe::NetParameter* net, int keep) {
  if (keep >= 23) return;
  if (keep < 2) throw UsageError("res4_blocks must be at least 2 (res4a and res4b22)");
  static const std::regex kBlock(R"(^(res|bn|scale)4b(\d+)(_.*)?$)");
  std::set<std::string> dropped_tops;
  std::string last_kept = keep == 2 ? "res4a" : "res4b" + std::to_string(keep - 2);
  google::protobuf::RepeatedPtrField<caffe::LayerParameter> kept;
  for (const auto& l : net->layer()) {
    std::smatch m;
    if (std::regex_match(l.name(), m, kBlock)) {
      const int b = std::stoi(m[2]);
      if (b >= keep - 1 && b < 22) {
        for (const auto& t : l.top()) dropped_tops.insert(t);
        continue;
      }
    }
    *kept.Add() = l;
  }
  for (auto& l : kept)
    for (auto& bottom : *l.mutable_bottom())
      if (dropped_tops.count(bottom) && bottom.rfind("res4b", 0) == 0) bottom = last_kept;
  net->mutable_layer()->Swap(&kept);
}

void Narrow(caffe::NetParameter* net, int divisor) {
  if (divisor == 1) return;
  auto div = [&](uint32_t n) { return std::max<uint32_t>(1, n / divisor); };
  for (auto& l : *net->mutable_layer()) {
    if (KeepsWidth(l.name())) continue;
    if (l.type() == "Convolution")
      l.mutable_convolution_param()->set_num_output(div(l.convolution_param().num_output()));
    if (l.type() == "InnerProduct")
      l.mutable_inner_product_param()->set_num_output(div(l.inner_product_param().num_output()));
    if (l.type() == "Embed") l.mutable_embed_param()->set_num_output(div(l.embed_param().num_output()));
  }
}

}  // namespace

int64_t WriteSyntheticModel(const SyntheticModelOptions& options) {
  if (options.prototxt.empty() || options.out_caffemodel.empty())
    throw UsageError("a synthetic model needs the source prototxt and the output caffemodel path");
  if (options.channel_divisor < 1) throw UsageError("channel_divisor must be >= 1");
  caffe::NetParameter net;
  ReadPrototxt(options.prototxt, &net);
  DropRes4Blocks(&net, options.res4_blocks);
  Narrow(&net, options.channel_divisor);
  if (!options.out_prototxt.empty()) WritePrototxt(options.out_prototxt, net);

  std::mt19937_64 rng(options.seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  caffe::NetParameter weights;
  weights.set_name(net.name());
  int64_t total = 0;
  for (const LayerParams& p : ParamShapes(net)) {
    caffe::LayerParameter* layer = weights.add_layer();
    layer->set_name(p.name);
    layer->set_type(p.type);
    for (size_t i = 0; i < p.shapes.size(); ++i) {
      const auto& shape = p.shapes[i];
      caffe::BlobProto* blob = layer->add_blobs();
      for (int64_t d : shape) blob->mutable_shape()->add_dim(d);
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      total += count;
      auto* data = blob->mutable_data();
      data->Reserve(static_cast<int>(count));
      // Scales that keep activations of a deep random net in a sane range:
      // He-style weights, BatchNorm statistics stored with a moving-average
      // factor (Caffe divides by blob 2), a damped last Scale of each branch.
      const bool branch_end = p.name.find("branch2c") != std::string::npos;
      for (int64_t j = 0; j < count; ++j) {
        float v = 0;
        if (p.type == "Convolution" || p.type == "InnerProduct") {
          const int64_t fan_in = i == 0 ? count / shape[0] : 1;
          v = i == 0 ? normal(rng) * std::sqrt(1.f / static_cast<float>(fan_in)) : 0.1f * normal(rng);
          if (p.name == "cls_score" || p.name == "attr_score") v *= 4.f;  // peaked class scores
          // Small box deltas keep proposals spread over the image, as a trained RPN's are.
          if (p.name == "rpn_bbox_pred" || p.name == "bbox_pred") v *= 0.05f;
        } else if (p.type == "Embed") {
          v = normal(rng);
        } else if (p.type == "BatchNorm") {
          constexpr float kFactor = 4.f;
          v = i == 0 ? 0.2f * normal(rng) * kFactor : i == 1 ? (0.5f + uniform(rng)) * kFactor : kFactor;
        } else if (p.type == "Scale") {
          v = i == 0 ? (branch_end ? 0.2f : 0.8f) + 0.4f * uniform(rng) : 0.1f * normal(rng);
        }
        data->Add(v);
      }
    }
  }
  WriteCaffeModel(options.out_caffemodel, weights);
  return total;
}

}  // namespace uniter::extractor
