// Runs the layers of a Caffe prototxt on LibTorch tensors: a small interpreter
// for the layer types BUTD's nets use. Weights are taken from a CaffeWeights
// at construction (BatchNorm + Scale after a Convolution are folded into it).
// Layer types it does not run itself (Python) are handed to a callback.
//
// Device and precision (GraphOptions): weights are moved and cast once at
// construction. Convolution, Embed and the affine layers run in the compute
// precision (their inputs are cast to it), pooling and element-wise layers
// keep their input's type, and InnerProduct (the score heads), Softmax and ROI
// pooling run in fp32; so in fp16/bf16 the backbone and res5 activations flow
// in reduced precision while scores and every output stay fp32. With
// channels_last, 4-D convolution inputs and weights are NHWC.
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

// Where and how the graph computes (ExtractorConfig's compute fields).
struct GraphOptions {
  std::string device = "cpu";      // Default: "cpu". Or "cuda" / "cuda:N".
  std::string precision = "fp32";  // Default: "fp32". Or "fp16" / "bf16".
  bool channels_last = false;      // Default: false (NCHW).
};
using LayerHook = std::function<void(const caffe::LayerParameter&, BlobMap*)>;

class CaffeGraph {
 public:
  // Throws FormatError naming the first missing or mis-shaped blob, and
  // UsageError for a device or precision this build or machine cannot run.
  CaffeGraph(const caffe::NetParameter& net, const CaffeWeights& weights, const GraphOptions& options = {});
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

  // `x` on the graph's device in the compute precision (and NHWC with
  // channels_last for 4-D): what "data" should hold.
  at::Tensor ToInput(const at::Tensor& x) const;
  // `x` on the graph's device, type unchanged.
  at::Tensor ToDevice(const at::Tensor& x) const;
  bool on_cuda() const;
  // Waits for the device's queued work (timings); no-op on the CPU.
  void Synchronize() const;
  const GraphOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace internal
}  // namespace uniter::extractor
