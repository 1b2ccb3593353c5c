// Caffe model files: the .prototxt (text NetParameter: the layer graph and its
// shapes) and the .caffemodel (binary NetParameter carrying the weight blobs).
// Parsing uses extractor/caffe.proto, our minimal copy of Caffe's schema with
// Caffe's field numbers; unknown fields are skipped.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace uniter::extractor {

namespace caffe {
class NetParameter;
}

// Parses a text .prototxt; the names in butd_net.h (kButdTestPrototxt, ...)
// give the built-in BUTD net. Throws FormatError naming file and line.
void ReadPrototxt(const std::string& path, caffe::NetParameter* net);
// Writes `net` as text.
void WritePrototxt(const std::string& path, const caffe::NetParameter& net);
// Parses a binary .caffemodel. Throws IoError / FormatError naming the file.
void ReadCaffeModel(const std::string& path, caffe::NetParameter* net);
// Writes `net` in the binary .caffemodel encoding.
void WriteCaffeModel(const std::string& path, const caffe::NetParameter& net);

struct CaffeBlob {
  std::vector<int64_t> shape;
  bool legacy_shape = false;  // shape came from num/channels/height/width
  std::vector<float> data;
};

std::string ShapeString(const std::vector<int64_t>& shape);

// The parameter blobs a prototxt's layers need, in layer order, inferred by
// propagating channel counts from the 3-channel "data" input: Convolution
// [out, in/group, kh, kw] (+ [out]), BatchNorm [C], [C], [1], Scale [C] (+ [C]),
// InnerProduct [out, in] (+ [out]), Embed [input_dim, out] (+ [out]).
struct LayerParams {
  std::string name;
  std::string type;
  std::vector<std::vector<int64_t>> shapes;
};
std::vector<LayerParams> ParamShapes(const caffe::NetParameter& net);

// The weight blobs of a .caffemodel by layer name (new `layer` and legacy
// `layers` messages alike). Immutable after construction; safe to share
// between threads.
class CaffeWeights {
 public:
  // Throws as ReadCaffeModel, and FormatError for a blob whose data length
  // does not match its shape.
  static CaffeWeights Load(const std::string& caffemodel_path);
  static CaffeWeights FromNet(const caffe::NetParameter& net, const std::string& source);

  bool Has(const std::string& layer) const { return layers_.count(layer) != 0; }
  int NumBlobs(const std::string& layer) const;

  // Blob `index` of `layer`, checked against `expected_shape` (a legacy 4-D
  // shape matches when equal after dropping leading 1s). Throws FormatError
  // "<source>: layer '<layer>' blob <index>: missing" or "... has shape [..],
  // the network needs [..]".
  const CaffeBlob& Get(const std::string& layer, int index, const std::vector<int64_t>& expected_shape) const;

  // All blobs of `layer`, unchecked. Throws FormatError when the layer has none.
  const std::vector<CaffeBlob>& Blobs(const std::string& layer) const;

  const std::string& source() const { return source_; }
  std::vector<std::string> LayerNames() const;

 private:
  std::string source_;
  std::map<std::string, std::vector<CaffeBlob>> layers_;
};

}  // namespace uniter::extractor
