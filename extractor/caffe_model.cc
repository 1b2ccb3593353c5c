#include "extractor/caffe_model.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "extractor/butd_net.h"
#include "extractor/caffe.pb.h"

namespace uniter::extractor {
namespace {

namespace pb = google::protobuf;

class CollectFirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) first_ = std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowErrno("cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool SameIgnoringLeadingOnes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && a[i] == 1 && a.size() - i > b.size()) ++i;
  while (j < b.size() && b[j] == 1 && b.size() - j > a.size() - i) ++j;
  return std::vector<int64_t>(a.begin() + i, a.end()) == std::vector<int64_t>(b.begin() + j, b.end());
}

CaffeBlob ToBlob(const caffe::BlobProto& proto, const std::string& where) {
  CaffeBlob blob;
  if (proto.has_shape()) {
    blob.shape.assign(proto.shape().dim().begin(), proto.shape().dim().end());
  } else {
    blob.legacy_shape = true;
    blob.shape = {proto.num(), proto.channels(), proto.height(), proto.width()};
  }
  int64_t count = 1;
  for (int64_t d : blob.shape) count *= d;
  if (proto.data_size() > 0) {
    blob.data.assign(proto.data().begin(), proto.data().end());
  } else {
    blob.data.assign(proto.double_data().begin(), proto.double_data().end());
  }
  if (static_cast<int64_t>(blob.data.size()) != count)
    throw FormatError("blob has shape " + ShapeString(blob.shape) + " (" + std::to_string(count) +
                          " values) but holds " + std::to_string(blob.data.size()),
                      where);
  return blob;
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

std::vector<LayerParams> ParamShapes(const caffe::NetParameter& net) {
  // Channels (or flattened features) of each blob by name.
  std::map<std::string, int64_t> channels{{"data", 3}};
  std::vector<LayerParams> out;
  auto in = [&](const caffe::LayerParameter& l, int i) -> int64_t {
    if (l.bottom_size() <= i) throw FormatError("layer '" + l.name() + "' lacks bottom " + std::to_string(i));
    auto it = channels.find(l.bottom(i));
    if (it == channels.end())
      throw FormatError("layer '" + l.name() + "' reads blob '" + l.bottom(i) + "' that no layer made");
    return it->second;
  };
  for (const auto& l : net.layer()) {
    LayerParams p{l.name(), l.type(), {}};
    int64_t top = -1;
    const std::string& t = l.type();
    if (t == "Convolution") {
      const auto& c = l.convolution_param();
      const int64_t k = c.kernel_size_size() ? c.kernel_size(0) : c.kernel_h();
      const int64_t kw = c.kernel_size_size() ? c.kernel_size(c.kernel_size_size() - 1) : c.kernel_w();
      p.shapes.push_back({c.num_output(), in(l, 0) / c.group(), k, kw});
      if (c.bias_term()) p.shapes.push_back({c.num_output()});
      top = c.num_output();
    } else if (t == "BatchNorm") {
      top = in(l, 0);
      p.shapes = {{top}, {top}, {1}};
    } else if (t == "Scale") {
      top = in(l, 0);
      p.shapes.push_back({top});
      if (l.scale_param().bias_term()) p.shapes.push_back({top});
    } else if (t == "InnerProduct") {
      const auto& c = l.inner_product_param();
      p.shapes.push_back({c.num_output(), in(l, 0)});
      if (c.bias_term()) p.shapes.push_back({c.num_output()});
      top = c.num_output();
    } else if (t == "Embed") {
      const auto& c = l.embed_param();
      p.shapes.push_back({c.input_dim(), c.num_output()});
      if (c.bias_term()) p.shapes.push_back({c.num_output()});
      top = c.num_output();
    } else if (t == "Concat") {
      top = 0;
      for (int i = 0; i < l.bottom_size(); ++i) top += in(l, i);
    } else if (t == "ArgMax") {
      top = 1;
    } else if (t == "Python") {
      top = 5;  // the proposal layer's rois
    } else if (l.bottom_size() > 0 && channels.count(l.bottom(0))) {
      top = channels[l.bottom(0)];  // ReLU, Pooling, ROIPooling, Eltwise, Flatten, Softmax, Reshape
    }
    for (const auto& name : l.top()) channels[name] = top;
    if (!p.shapes.empty()) out.push_back(std::move(p));
  }
  return out;
}

void ReadPrototxt(const std::string& path, caffe::NetParameter* net) {
  const std::optional<std::string> builtin = BuiltinPrototxt(path);
  const std::string text = builtin ? *builtin : ReadAll(path);
  pb::TextFormat::Parser parser;
  CollectFirstError errors;
  parser.RecordErrorsTo(&errors);
  // Real prototxts carry fields our minimal schema does not declare.
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(text, net)) throw FormatError("not a Caffe prototxt: " + errors.first(), path);
}

void WritePrototxt(const std::string& path, const caffe::NetParameter& net) {
  std::string text;
  if (!pb::TextFormat::PrintToString(net, &text)) throw Error("cannot print prototxt", path);
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) ThrowErrno("cannot write", path);
}

void ReadCaffeModel(const std::string& path, caffe::NetParameter* net) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) ThrowErrno("cannot open", path);
  pb::io::FileInputStream raw(fd);
  raw.SetCloseOnDelete(true);
  pb::io::CodedInputStream coded(&raw);
  // The BUTD model is ~250 MB, past protobuf's default message limit.
  coded.SetTotalBytesLimit(INT32_MAX);
  if (!net->ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
    throw FormatError("not a Caffe NetParameter (.caffemodel) or truncated", path);
}

void WriteCaffeModel(const std::string& path, const caffe::NetParameter& net) {
  std::ofstream out(path, std::ios::binary);
  if (!out || !net.SerializeToOstream(&out)) ThrowErrno("cannot write", path);
}

CaffeWeights CaffeWeights::Load(const std::string& caffemodel_path) {
  caffe::NetParameter net;
  ReadCaffeModel(caffemodel_path, &net);
  return FromNet(net, caffemodel_path);
}

CaffeWeights CaffeWeights::FromNet(const caffe::NetParameter& net, const std::string& source) {
  CaffeWeights w;
  w.source_ = source;
  auto add = [&](const std::string& name, const auto& blobs) {
    if (blobs.empty()) return;
    auto& dst = w.layers_[name];
    dst.clear();
    for (int i = 0; i < blobs.size(); ++i)
      dst.push_back(ToBlob(blobs.Get(i), source + "[" + name + "/" + std::to_string(i) + "]"));
  };
  for (const auto& l : net.layers()) add(l.name(), l.blobs());
  for (const auto& l : net.layer()) add(l.name(), l.blobs());
  return w;
}

int CaffeWeights::NumBlobs(const std::string& layer) const {
  auto it = layers_.find(layer);
  return it == layers_.end() ? 0 : static_cast<int>(it->second.size());
}

const CaffeBlob& CaffeWeights::Get(const std::string& layer, int index,
                                   const std::vector<int64_t>& expected_shape) const {
  const std::string what = "layer '" + layer + "' blob " + std::to_string(index);
  auto it = layers_.find(layer);
  if (it == layers_.end() || index >= static_cast<int>(it->second.size()))
    throw FormatError(what + ": missing (the network needs shape " + ShapeString(expected_shape) + ")", source_);
  const CaffeBlob& blob = it->second[index];
  const bool ok = blob.shape == expected_shape ||
                  (blob.legacy_shape && SameIgnoringLeadingOnes(blob.shape, expected_shape));
  if (!ok)
    throw FormatError(what + ": has shape " + ShapeString(blob.shape) + ", the network needs " +
                          ShapeString(expected_shape),
                      source_);
  return blob;
}

const std::vector<CaffeBlob>& CaffeWeights::Blobs(const std::string& layer) const {
  auto it = layers_.find(layer);
  if (it == layers_.end()) throw FormatError("layer '" + layer + "': no blobs", source_);
  return it->second;
}

std::vector<std::string> CaffeWeights::LayerNames() const {
  std::vector<std::string> names;
  for (const auto& [name, blobs] : layers_) names.push_back(name);
  return names;
}

}  // namespace uniter::extractor
