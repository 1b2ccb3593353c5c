#include "extractor/internal/caffe_graph.h"

#include <c10/core/DeviceGuard.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/error.h"
#include "extractor/caffe.pb.h"
#include "extractor/caffe_model.h"
#include "extractor/ops/roi_pool.h"

namespace uniter::extractor::internal {
namespace {

at::Tensor FromBlob(const CaffeBlob& b) {
  return torch::from_blob(const_cast<float*>(b.data.data()), {static_cast<int64_t>(b.data.size())}, torch::kFloat)
      .clone();
}

// Everything a layer needs at run time, prepared once.
struct Prepared {
  const caffe::LayerParameter* param = nullptr;
  bool skip = false;  // folded into the previous Convolution
  at::Tensor weight, bias;  // Convolution / InnerProduct / Embed / affine (BN, Scale)
  std::vector<int64_t> stride{1, 1}, pad{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

// Caffe BatchNorm (global stats) as y = x * s + t.
void BatchNormAffine(const caffe::LayerParameter& l, const CaffeWeights& w, int64_t c, at::Tensor* s,
                     at::Tensor* t) {
  const float f = w.Get(l.name(), 2, {1}).data[0];
  const float factor = f == 0.f ? 0.f : 1.f / f;
  const at::Tensor mean = FromBlob(w.Get(l.name(), 0, {c})) * factor;
  const at::Tensor var = FromBlob(w.Get(l.name(), 1, {c})) * factor;
  *s = 1.0 / torch::sqrt(var + l.batch_norm_param().eps());
  *t = -mean * *s;
}

void ScaleAffine(const caffe::LayerParameter& l, const CaffeWeights& w, int64_t c, at::Tensor* s, at::Tensor* t) {
  *s = FromBlob(w.Get(l.name(), 0, {c}));
  *t = l.scale_param().bias_term() ? FromBlob(w.Get(l.name(), 1, {c})) : torch::zeros({c});
}

std::vector<int64_t> Pair(const google::protobuf::RepeatedField<uint32_t>& v, int64_t fallback) {
  if (v.empty()) return {fallback, fallback};
  return {v.Get(0), v.Get(v.size() - 1)};
}

at::Tensor Affine(const at::Tensor& x, const at::Tensor& s, const at::Tensor& t) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = s.size(0);
  return x * s.view(shape) + t.view(shape);
}

// "cpu", "cuda", "cuda:N", checked against this build and machine at run time
// (the same code runs on CPU-only and CUDA LibTorch builds).
c10::Device ParseDevice(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name != "cuda" && name.rfind("cuda:", 0) != 0)
    throw UsageError("device '" + name + "' is not 'cpu' or 'cuda:N'");
  int64_t index = 0;
  if (name.size() > 5) {
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
      throw UsageError("device '" + name + "' is not 'cpu' or 'cuda:N'");
    index = std::stoi(digits);
  }
  if (!torch::cuda::is_available())
    throw UsageError("device '" + name +
                     "' cannot run here: this LibTorch has no CUDA or the machine has no usable GPU");
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count)
    throw UsageError("device '" + name + "' cannot run here: " + std::to_string(count) + " CUDA device(s)");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

at::ScalarType ParsePrecision(const std::string& name) {
  if (name == "fp32") return at::kFloat;
  if (name == "fp16") return at::kHalf;
  if (name == "bf16") return at::kBFloat16;
  throw UsageError("precision '" + name + "' is not fp32, fp16 or bf16");
}

}  // namespace

struct CaffeGraph::Impl {
  const caffe::NetParameter* net;
  std::vector<Prepared> layers;
  GraphOptions options;
  c10::Device device{c10::kCPU};
  at::ScalarType dtype = at::kFloat;

  // Weights live on the device in type `type`; 4-D conv filters NHWC with
  // channels_last.
  at::Tensor Place(const at::Tensor& w, at::ScalarType type) const {
    at::Tensor t = w.to(device, type);
    if (options.channels_last && t.dim() == 4) t = t.contiguous(at::MemoryFormat::ChannelsLast);
    return t;
  }
  // A layer input in the type of its weights (and layout).
  at::Tensor Compute(const at::Tensor& x, at::ScalarType type) const {
    at::Tensor t = x.scalar_type() == type ? x : x.to(type);
    if (options.channels_last && t.dim() == 4 && !t.is_contiguous(at::MemoryFormat::ChannelsLast))
      t = t.contiguous(at::MemoryFormat::ChannelsLast);
    return t;
  }
};

CaffeGraph::CaffeGraph(const caffe::NetParameter& net, const CaffeWeights& weights, const GraphOptions& options)
    : impl_(new Impl) {
  impl_->net = &net;
  impl_->options = options;
  impl_->device = ParseDevice(options.device);
  impl_->dtype = ParsePrecision(options.precision);
  const std::vector<LayerParams> shapes = ParamShapes(net);
  std::map<std::string, const LayerParams*> by_name;
  for (const auto& p : shapes) by_name[p.name] = &p;
  auto expect = [&](const std::string& layer, size_t i) { return by_name.at(layer)->shapes.at(i); };
  auto& layers = impl_->layers;
  layers.resize(net.layer_size());
  for (int i = 0; i < net.layer_size(); ++i) {
    const caffe::LayerParameter& l = net.layer(i);
    Prepared& p = layers[i];
    p.param = &l;
    if (p.skip) continue;
    const std::string& t = l.type();
    if (t == "Convolution") {
      const auto& c = l.convolution_param();
      p.weight = FromBlob(weights.Get(l.name(), 0, expect(l.name(), 0)));
      const auto ws = expect(l.name(), 0);
      p.weight = p.weight.view(ws);
      const int64_t out = ws[0];
      p.bias = c.bias_term() ? FromBlob(weights.Get(l.name(), 1, {out})) : torch::zeros({out});
      p.stride = c.has_stride_h() ? std::vector<int64_t>{c.stride_h(), c.stride_w()} : Pair(c.stride(), 1);
      p.pad = c.has_pad_h() || c.has_pad_w() ? std::vector<int64_t>{c.pad_h(), c.pad_w()} : Pair(c.pad(), 0);
      p.dilation = Pair(c.dilation(), 1);
      p.groups = c.group();
      // Fold BatchNorm and Scale that follow in place on this conv's output.
      int j = i + 1;
      while (j < net.layer_size() && (net.layer(j).type() == "BatchNorm" || net.layer(j).type() == "Scale") &&
             net.layer(j).bottom_size() == 1 && net.layer(j).bottom(0) == l.top(0) &&
             net.layer(j).top_size() == 1 && net.layer(j).top(0) == l.top(0)) {
        at::Tensor s, sh;
        if (net.layer(j).type() == "BatchNorm")
          BatchNormAffine(net.layer(j), weights, out, &s, &sh);
        else
          ScaleAffine(net.layer(j), weights, out, &s, &sh);
        p.weight = p.weight * s.view({out, 1, 1, 1});
        p.bias = p.bias * s + sh;
        layers[j].skip = true;
        ++j;
      }
    } else if (t == "BatchNorm" || t == "Scale") {
      const int64_t c = expect(l.name(), 0)[0];
      if (t == "BatchNorm")
        BatchNormAffine(l, weights, c, &p.weight, &p.bias);
      else
        ScaleAffine(l, weights, c, &p.weight, &p.bias);
    } else if (t == "InnerProduct") {
      const auto ws = expect(l.name(), 0);
      p.weight = FromBlob(weights.Get(l.name(), 0, ws)).view(ws);
      if (l.inner_product_param().bias_term()) p.bias = FromBlob(weights.Get(l.name(), 1, {ws[0]}));
    } else if (t == "Embed") {
      const auto ws = expect(l.name(), 0);
      p.weight = FromBlob(weights.Get(l.name(), 0, ws)).view(ws);
      if (l.embed_param().bias_term()) p.bias = FromBlob(weights.Get(l.name(), 1, {ws[1]}));
    }
  }
  // Folding above ran in fp32 on the CPU; now move and cast once. The
  // InnerProduct heads (class, box, attribute scores: ~1% of the FLOPs) stay
  // fp32: in bf16 their logits would move the softmax and so the selection.
  for (Prepared& p : layers) {
    const at::ScalarType type = p.param->type() == "InnerProduct" ? at::kFloat : impl_->dtype;
    if (p.weight.defined()) p.weight = impl_->Place(p.weight, type);
    if (p.bias.defined()) p.bias = impl_->Place(p.bias, type);
  }
}

CaffeGraph::~CaffeGraph() = default;

int CaffeGraph::NumLayers() const { return static_cast<int>(impl_->layers.size()); }
const caffe::LayerParameter& CaffeGraph::Layer(int i) const { return *impl_->layers.at(i).param; }

int CaffeGraph::LayerIndex(const std::string& name) const {
  for (int i = 0; i < NumLayers(); ++i)
    if (Layer(i).name() == name) return i;
  return -1;
}

int CaffeGraph::FirstReaderOf(const std::string& bottom, int from) const {
  for (int i = from; i < NumLayers(); ++i)
    for (const auto& b : Layer(i).bottom())
      if (b == bottom) return i;
  return -1;
}

const GraphOptions& CaffeGraph::options() const { return impl_->options; }
bool CaffeGraph::on_cuda() const { return impl_->device.is_cuda(); }

at::Tensor CaffeGraph::ToInput(const at::Tensor& x) const {
  const at::Tensor t = impl_->Compute(x.to(impl_->device), impl_->dtype);
  // NCHW unless asked otherwise, whatever strides the caller's tensor has.
  return impl_->options.channels_last ? t : t.contiguous();
}
at::Tensor CaffeGraph::ToDevice(const at::Tensor& x) const { return x.to(impl_->device); }

void CaffeGraph::Synchronize() const {
  if (impl_->device.is_cuda()) torch::cuda::synchronize(impl_->device.index());
}

void CaffeGraph::Run(int begin, int end, BlobMap* blobs, const LayerHook& hook) const {
  torch::NoGradGuard no_grad;
  // Kernels launch on the graph's GPU whatever the caller's current device.
  c10::OptionalDeviceGuard device_guard;
  if (impl_->device.is_cuda()) device_guard.reset_device(impl_->device);
  for (int i = begin; i < end; ++i) {
    const Prepared& p = impl_->layers[i];
    if (p.skip) continue;
    const caffe::LayerParameter& l = *p.param;
    const std::string& t = l.type();
    auto in = [&](int k) -> const at::Tensor& {
      auto it = blobs->find(l.bottom(k));
      if (it == blobs->end()) throw Error("layer '" + l.name() + "' needs blob '" + l.bottom(k) + "'");
      return it->second;
    };
    at::Tensor out;
    if (t == "Convolution") {
      out = at::conv2d(impl_->Compute(in(0), p.weight.scalar_type()), p.weight, p.bias, p.stride, p.pad,
                       p.dilation, p.groups);
    } else if (t == "BatchNorm" || t == "Scale") {
      out = Affine(impl_->Compute(in(0), p.weight.scalar_type()), p.weight, p.bias);
    } else if (t == "ReLU") {
      const float slope = l.relu_param().negative_slope();
      out = slope == 0.f ? torch::relu(in(0)) : torch::leaky_relu(in(0), slope);
    } else if (t == "Pooling") {
      const auto& pp = l.pooling_param();
      const at::Tensor& x = in(0);
      if (pp.global_pooling()) {
        out = pp.pool() == caffe::PoolingParameter::AVE ? x.mean({2, 3}, true) : x.amax({2, 3}, true);
      } else if (pp.pool() == caffe::PoolingParameter::MAX) {
        // Caffe rounds the output size up (ceil mode).
        out = at::max_pool2d(x, {pp.kernel_size(), pp.kernel_size()}, {pp.stride(), pp.stride()},
                             {pp.pad(), pp.pad()}, {1, 1}, /*ceil_mode=*/true);
      } else {
        out = at::avg_pool2d(x, {pp.kernel_size(), pp.kernel_size()}, {pp.stride(), pp.stride()},
                             {pp.pad(), pp.pad()}, /*ceil_mode=*/true, /*count_include_pad=*/true);
      }
    } else if (t == "Eltwise") {
      const auto& e = l.eltwise_param();
      // Caffe's default coefficient 1 is skipped (x * 1 is exact anyway).
      auto scaled = [&](int k) { return e.coeff_size() > k && e.coeff(k) != 1.f ? in(k) * e.coeff(k) : in(k); };
      out = scaled(0);
      for (int k = 1; k < l.bottom_size(); ++k) {
        if (e.operation() == caffe::EltwiseParameter::SUM)
          out = out + scaled(k);
        else if (e.operation() == caffe::EltwiseParameter::PROD)
          out = out * in(k);
        else
          out = torch::maximum(out, in(k));
      }
    } else if (t == "ROIPooling") {
      const auto& r = l.roi_pooling_param();
      // fp32 NCHW in and out: max pooling commutes with rounding to fp16/bf16,
      // so the next convolution's cast gives the same values.
      const at::Tensor features = in(0).to(at::kFloat).contiguous();
      out = ops::RoiPool(features, in(1).to(features.device(), at::kFloat),
                         {static_cast<int>(r.pooled_h()), static_cast<int>(r.pooled_w()), r.spatial_scale()});
    } else if (t == "InnerProduct") {
      const int axis = l.inner_product_param().axis();
      out = torch::linear(impl_->Compute(in(0).flatten(axis), p.weight.scalar_type()), p.weight,
                          p.bias.defined() ? p.bias : at::Tensor());
    } else if (t == "Softmax") {
      out = torch::softmax(in(0).to(at::kFloat), l.softmax_param().axis());
    } else if (t == "Flatten") {
      out = in(0).flatten(l.flatten_param().axis(), l.flatten_param().end_axis());
    } else if (t == "Reshape") {
      const at::Tensor& x = in(0);
      std::vector<int64_t> shape;
      const auto& dims = l.reshape_param().shape().dim();
      for (int k = 0; k < dims.size(); ++k) shape.push_back(dims.Get(k) == 0 ? x.size(k) : dims.Get(k));
      out = x.reshape(shape);
    } else if (t == "ArgMax") {
      // Caffe's ArgMax emits float indices, shape [N, top_k].
      out = std::get<1>(in(0).max(l.argmax_param().axis(), true)).to(torch::kFloat);
    } else if (t == "Embed") {
      out = p.weight.index_select(0, in(0).reshape(-1).to(torch::kLong));
      if (p.bias.defined()) out = out + p.bias;
      std::vector<int64_t> shape = in(0).sizes().vec();
      shape.push_back(p.weight.size(1));
      out = out.reshape(shape);
    } else if (t == "Concat") {
      std::vector<at::Tensor> parts;
      for (int k = 0; k < l.bottom_size(); ++k) parts.push_back(in(k).to(in(0).scalar_type()));
      out = torch::cat(parts, l.concat_param().axis());
    } else if (t == "Dropout" || t == "Silence") {
      out = in(0);
    } else if (hook) {
      hook(l, blobs);
      continue;
    } else {
      throw Error("layer '" + l.name() + "': type '" + t + "' is not supported");
    }
    (*blobs)[l.top(0)] = out;
  }
}

}  // namespace uniter::extractor::internal
