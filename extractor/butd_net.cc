#include "extractor/butd_net.h"

#include <array>
#include <cstdio>
#include <initializer_list>
#include <string_view>

namespace uniter::extractor {
namespace {

// Parameter learning rates as the BUTD training left them: conv1..res3
// frozen (lr 0, decay 0), res4/res5 trained, batch norm always frozen.
constexpr std::string_view kFrozen = "param { lr_mult: 0 decay_mult: 0 } ";
constexpr std::string_view kTrained = "param { lr_mult: 1 } ";
constexpr std::string_view kHead = "param { lr_mult: 1 } param { lr_mult: 2 } ";
constexpr std::string_view kGaussian = "weight_filler { type: \"gaussian\" std: 0.01 } ";
constexpr std::string_view kZeroBias = "bias_filler { type: \"constant\" value: 0 } ";

class NetText {
 public:
  void Layer(std::string_view name, std::string_view type, std::initializer_list<std::string_view> bottoms,
             std::string_view top, std::string_view body = {}) {
    text_ += "layer { name: \"";
    text_ += name;
    text_ += "\" type: \"";
    text_ += type;
    text_ += "\" ";
    for (std::string_view b : bottoms) (text_ += "bottom: \"") += b, text_ += "\" ";
    (text_ += "top: \"") += top;
    text_ += "\" ";
    text_ += body;
    text_ += "}\n";
  }

  // A bias-free convolution, then its frozen BatchNorm + Scale (Caffe's
  // batch norm is two layers), in place; `relu`: a ReLU after them.
  void ConvBn(const std::string& conv, const std::string& bn, const std::string& scale, std::string_view bottom,
              int out, int kernel, int stride, int dilation, bool trained, bool relu) {
    const int pad = dilation * (kernel - 1) / 2;
    std::string p = "convolution_param { num_output: " + std::to_string(out) +
                    " kernel_size: " + std::to_string(kernel);
    if (dilation > 1) p += " dilation: " + std::to_string(dilation);
    p += " pad: " + std::to_string(pad) + " stride: " + std::to_string(stride) + " bias_term: false } ";
    p += trained ? kTrained : kFrozen;
    Layer(conv, "Convolution", {bottom}, conv, p);
    std::string frozen3(kFrozen);
    frozen3 += kFrozen;
    frozen3 += kFrozen;
    Layer(bn, "BatchNorm", {conv}, conv, "batch_norm_param { use_global_stats: true } " + frozen3);
    Layer(scale, "Scale", {conv}, conv, "scale_param { bias_term: true } " + std::string(kFrozen) + std::string(kFrozen));
    if (relu) Layer(conv + "_relu", "ReLU", {conv}, conv);
  }

  // One bottleneck block "res<stage><block>": 1x1 (stride) -> 3x3 -> 1x1
  // (4x wider), plus the input or, in a stage's first block, a 1x1
  // projection; sum; ReLU. Returns the block's output blob.
  std::string Bottleneck(const std::string& stage_block, std::string_view input, int width, int stride,
                         int dilation, bool first, bool trained, bool projection_trained) {
    const std::string res = "res" + stage_block;
    auto names = [&](const std::string& branch) {
      return std::array<std::string, 3>{res + "_" + branch, "bn" + stage_block + "_" + branch,
                                        "scale" + stage_block + "_" + branch};
    };
    const auto proj = names("branch1");
    if (first) ConvBn(proj[0], proj[1], proj[2], input, 4 * width, 1, stride, 1, projection_trained, false);
    const auto a = names("branch2a"), b = names("branch2b"), c = names("branch2c");
    ConvBn(a[0], a[1], a[2], input, width, 1, stride, 1, trained, true);
    ConvBn(b[0], b[1], b[2], a[0], width, 3, 1, dilation, trained, true);
    ConvBn(c[0], c[1], c[2], b[0], 4 * width, 1, 1, 1, trained, false);
    Layer(res, "Eltwise", {first ? std::string_view(proj[0]) : input, c[0]}, res);
    Layer(res + "_relu", "ReLU", {res}, res);
    return res;
  }

  // A ResNet stage: block names a, b, c (res2, res5) or a, b1..bN (res3, res4).
  std::string Stage(int stage, int blocks, std::string input, int width, int stride, int dilation, bool trained,
                    bool projection_trained) {
    for (int i = 0; i < blocks; ++i) {
      char block[32];
      if (i == 0 || blocks <= 3) std::snprintf(block, sizeof block, "%d%c", stage, 'a' + i);
      else std::snprintf(block, sizeof block, "%db%d", stage, i);
      input = Bottleneck(block, input, width, i == 0 ? stride : 1, dilation, i == 0, trained, projection_trained);
    }
    return input;
  }

  void Raw(std::string_view s) { text_ += s; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

void Input(NetText& t, std::string_view name, std::initializer_list<int> dims) {
  t.Raw("input: \"");
  t.Raw(name);
  t.Raw("\"\ninput_shape {");
  for (int d : dims) t.Raw(" dim: " + std::to_string(d));
  t.Raw(" }\n");
}

void Rpn(NetText& t) {
  const std::string head(kHead);
  const std::string fill = std::string(kGaussian) + std::string(kZeroBias);
  t.Layer("rpn_conv/3x3", "Convolution", {"res4b22"}, "rpn/output",
          head + "convolution_param { num_output: 512 kernel_size: 3 pad: 1 stride: 1 " + fill + "} ");
  t.Layer("rpn_relu/3x3", "ReLU", {"rpn/output"}, "rpn/output");
  // 12 anchors (4 scales x 3 ratios): 2 scores and 4 deltas each.
  t.Layer("rpn_cls_score", "Convolution", {"rpn/output"}, "rpn_cls_score",
          head + "convolution_param { num_output: 24 kernel_size: 1 pad: 0 stride: 1 " + fill + "} ");
  t.Layer("rpn_bbox_pred", "Convolution", {"rpn/output"}, "rpn_bbox_pred",
          head + "convolution_param { num_output: 48 kernel_size: 1 pad: 0 stride: 1 " + fill + "} ");
  t.Layer("rpn_cls_score_reshape", "Reshape", {"rpn_cls_score"}, "rpn_cls_score_reshape",
          "reshape_param { shape { dim: 0 dim: 2 dim: -1 dim: 0 } } ");
  t.Layer("rpn_cls_prob", "Softmax", {"rpn_cls_score_reshape"}, "rpn_cls_prob");
  t.Layer("rpn_cls_prob_reshape", "Reshape", {"rpn_cls_prob"}, "rpn_cls_prob_reshape",
          "reshape_param { shape { dim: 0 dim: 24 dim: -1 dim: 0 } } ");
  t.Layer("proposal", "Python", {"rpn_cls_prob_reshape", "rpn_bbox_pred", "im_info"}, "rois",
          "python_param { module: \"rpn.proposal_layer\" layer: \"ProposalLayer\" "
          "param_str: \"'feat_stride': 16 \\n'scales': !!python/tuple [4, 8, 16, 32]\" } ");
}

void Heads(NetText& t) {
  const std::string head(kHead);
  const std::string fill = std::string(kGaussian) + std::string(kZeroBias);
  t.Layer("pool5", "Pooling", {"res5c"}, "pool5", "pooling_param { global_pooling: true pool: AVE } ");
  t.Layer("pool5_flat", "Flatten", {"pool5"}, "pool5_flat", "flatten_param { axis: 1 } ");
  // 1600 Visual Genome objects + background; class-specific box deltas.
  t.Layer("cls_score", "InnerProduct", {"pool5"}, "cls_score",
          head + "inner_product_param { num_output: 1601 " + fill + "} ");
  t.Layer("bbox_pred", "InnerProduct", {"pool5"}, "bbox_pred",
          head + "inner_product_param { num_output: 6404 " + fill + "} ");
  t.Layer("cls_prob", "Softmax", {"cls_score"}, "cls_prob");
  // Attributes (400 + none) from pool5 and an embedding of the argmax class.
  t.Layer("predicted_cls", "ArgMax", {"cls_score"}, "predicted_cls", "argmax_param { axis: 1 } ");
  t.Layer("cls_embedding", "Embed", {"predicted_cls"}, "cls_embedding",
          "propagate_down: false embed_param { num_output: 256 input_dim: 1601 bias_term: false " +
              std::string(kGaussian) + "} ");
  t.Layer("cls_embedding_flat", "Flatten", {"cls_embedding"}, "cls_embedding_flat", "flatten_param { axis: 1 } ");
  t.Layer("concat_pool5", "Concat", {"pool5_flat", "cls_embedding_flat"}, "concat_pool5", "concat_param { axis: 1 } ");
  t.Layer("fc_attr", "InnerProduct", {"concat_pool5"}, "fc_attr",
          head + "inner_product_param { num_output: 512 " + fill + "} ");
  t.Layer("relu_attr", "ReLU", {"fc_attr"}, "fc_attr");
  t.Layer("attr_score", "InnerProduct", {"fc_attr"}, "attr_score",
          head + "inner_product_param { num_output: 401 " + fill + "} ");
  t.Layer("attr_prob", "Softmax", {"attr_score"}, "attr_prob");
}

}  // namespace

std::string ButdPrototxtText(bool given_boxes) {
  NetText t;
  t.Raw("name: \"ResNet-101\"\n");
  Input(t, "data", {1, 3, 224, 224});
  Input(t, "im_info", {1, 3});
  if (given_boxes) Input(t, "rois", {1, 5});  // [batch index, x1, y1, x2, y2]
  t.ConvBn("conv1", "bn_conv1", "scale_conv1", "data", 64, 7, 2, 1, false, true);
  t.Layer("pool1", "Pooling", {"conv1"}, "pool1", "pooling_param { kernel_size: 3 stride: 2 pool: MAX } ");
  // ResNet-101: 3, 4, 23 blocks to stride 16 (C4); the RPN and ROI pooling
  // read res4b22; res5 runs per region at stride 1, dilated.
  // res4's projection (res4a_branch1) stayed frozen in BUTD's training.
  std::string x = t.Stage(2, 3, "pool1", 64, 1, 1, false, false);
  x = t.Stage(3, 4, x, 128, 2, 1, false, false);
  x = t.Stage(4, 23, x, 256, 2, 1, true, false);
  if (!given_boxes) Rpn(t);
  t.Layer("roi_pool5", "ROIPooling", {x, "rois"}, "roipool5",
          "roi_pooling_param { pooled_w: 14 pooled_h: 14 spatial_scale: 0.0625 } ");
  t.Stage(5, 3, "roipool5", 512, 1, 2, true, true);
  Heads(t);
  return t.text();
}

std::optional<std::string> BuiltinPrototxt(const std::string& path) {
  if (path == kButdTestPrototxt) return ButdPrototxtText(false);
  if (path == kButdTestGtPrototxt) return ButdPrototxtText(true);
  return std::nullopt;
}

}  // namespace uniter::extractor
