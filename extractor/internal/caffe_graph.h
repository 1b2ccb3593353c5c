// Runs the layers of a Caffe prototxt on LibTorch tensors: a small interpreter
// for the layer types BUTD's nets use. Weights are taken from a CaffeWeights
// at construction (BatchNorm + Scale after a Convolution are folded into it).
// Layer types it does not run itself (Python) are handed to a callback.
//
// Thread safety: Run() is const and may be called concurrently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace uniter::extractor {

namespace caffe {
class NetParameter;
class LayerParameter;
}  // namespace caffe
class CaffeWeights;

namespace internal {

using BlobMap = std::map<std::string, at::Tensor>;
using LayerHook = std::function<void(const caffe::LayerParameter&, BlobMap*)>;

class CaffeGraph {
 public:
  // Throws FormatError naming the first missing or mis-shaped blob.
  CaffeGraph(const caffe::NetParameter& net, const CaffeWeights& weights);
  ~CaffeGraph();

  // Index of the first layer named `name`, or -1.
  int LayerIndex(const std::string& name) const;
  // Index of the first layer reading blob `bottom`, at or after `from`, or -1.
  int FirstReaderOf(const std::string& bottom, int from = 0) const;
  int NumLayers() const;
  const caffe::LayerParameter& Layer(int i) const;

  // Runs layers [begin, end) reading and writing `blobs`; `hook` runs layers
  // the interpreter does not know (the proposal layer).
  void Run(int begin, int end, BlobMap* blobs, const LayerHook& hook = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace internal
}  // namespace uniter::extractor
