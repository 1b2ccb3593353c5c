#include "extractor/faster_rcnn.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"
#include "extractor/caffe.pb.h"
#include "extractor/caffe_model.h"
#include "extractor/ops/nms.h"

namespace uniter::extractor {
namespace {

void WHCtr(const double* a, double* w, double* h, double* x, double* y) {
  *w = a[2] - a[0] + 1;
  *h = a[3] - a[1] + 1;
  *x = a[0] + 0.5 * (*w - 1);
  *y = a[1] + 0.5 * (*h - 1);
}

void MkAnchor(double w, double h, double x, double y, std::vector<double>* out) {
  out->insert(out->end(), {x - 0.5 * (w - 1), y - 0.5 * (h - 1), x + 0.5 * (w - 1), y + 0.5 * (h - 1)});
}

// The proposal layer (rpn/proposal_layer.py, TEST phase) in float32 as numpy runs it.
// `prob`, `bbox_deltas`: one image's RPN outputs [1,...] as float32 CPU,
// `im_info` its [1,3] row; rois get batch index `batch`.
at::Tensor Proposals(const at::Tensor& prob, const at::Tensor& bbox_deltas, const at::Tensor& im_info,
                     const ExtractorConfig& config, int64_t batch) {
  const std::vector<float> base = GenerateAnchors(16, config.anchor_ratios, config.anchor_scales);
  const int64_t a = static_cast<int64_t>(base.size() / 4);
  if (prob.size(1) != 2 * a || bbox_deltas.size(1) != 4 * a)
    throw Error("proposal layer: RPN outputs have " + std::to_string(prob.size(1)) + " scores and " +
                std::to_string(bbox_deltas.size(1)) + " deltas, expected " + std::to_string(2 * a) + " and " +
                std::to_string(4 * a) + " for " + std::to_string(a) + " anchors");
  const int64_t height = prob.size(2), width = prob.size(3);
  const at::Tensor scores = prob.slice(1, a).permute({0, 2, 3, 1}).reshape(-1).contiguous();
  const at::Tensor deltas = bbox_deltas.permute({0, 2, 3, 1}).reshape({-1, 4}).contiguous();
  const float im_h = im_info[0][0].item<float>(), im_w = im_info[0][1].item<float>();
  const double im_scale = im_info[0][2].item<float>();
  const int64_t n = height * width * a;
  std::vector<float> boxes(4 * n);
  const float* d = deltas.data_ptr<float>();
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t k = 0; k < a; ++k) {
        const int64_t i = (y * width + x) * a + k;
        const float sx = static_cast<float>(x * config.feat_stride), sy = static_cast<float>(y * config.feat_stride);
        const float ax1 = base[4 * k] + sx, ay1 = base[4 * k + 1] + sy;
        const float ax2 = base[4 * k + 2] + sx, ay2 = base[4 * k + 3] + sy;
        const float w = ax2 - ax1 + 1.0f, h = ay2 - ay1 + 1.0f;
        const float cx = ax1 + 0.5f * w, cy = ay1 + 0.5f * h;
        const float pcx = d[4 * i] * w + cx, pcy = d[4 * i + 1] * h + cy;
        const float pw = std::exp(d[4 * i + 2]) * w, ph = std::exp(d[4 * i + 3]) * h;
        const float box[4] = {pcx - 0.5f * pw, pcy - 0.5f * ph, pcx + 0.5f * pw, pcy + 0.5f * ph};
        const float lim[4] = {im_w - 1, im_h - 1, im_w - 1, im_h - 1};
        for (int c = 0; c < 4; ++c) boxes[4 * i + c] = std::max(std::min(box[c], lim[c]), 0.f);
      }
  const double min_size = config.rpn_min_size * im_scale;
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    const float ws = boxes[4 * i + 2] - boxes[4 * i] + 1, hs = boxes[4 * i + 3] - boxes[4 * i + 1] + 1;
    if (ws >= min_size && hs >= min_size) keep.push_back(i);
  }
  const float* s = scores.data_ptr<float>();
  std::stable_sort(keep.begin(), keep.end(), [&](int64_t p, int64_t q) { return s[p] > s[q]; });
  if (config.pre_nms_top_n > 0 && static_cast<int64_t>(keep.size()) > config.pre_nms_top_n)
    keep.resize(config.pre_nms_top_n);
  const int64_t m = static_cast<int64_t>(keep.size());
  at::Tensor cand = torch::empty({m, 4}), cand_scores = torch::empty({m});
  float* cb = cand.data_ptr<float>();
  float* cs = cand_scores.data_ptr<float>();
  for (int64_t j = 0; j < m; ++j) {
    for (int c = 0; c < 4; ++c) cb[4 * j + c] = boxes[4 * keep[j] + c];
    cs[j] = s[keep[j]];
  }
  at::Tensor kept = ops::Nms(cand, cand_scores, {config.rpn_nms_threshold, ops::BoxConvention::kCaffe});
  if (config.post_nms_top_n > 0 && kept.size(0) > config.post_nms_top_n) kept = kept.slice(0, 0, config.post_nms_top_n);
  return torch::cat({torch::full({kept.size(0), 1}, static_cast<float>(batch)), cand.index_select(0, kept)}, 1);
}

}  // namespace

std::vector<float> GenerateAnchors(int base_size, const std::vector<double>& ratios,
                                   const std::vector<double>& scales) {
  const double base[4] = {0, 0, base_size - 1.0, base_size - 1.0};
  double w, h, x, y;
  WHCtr(base, &w, &h, &x, &y);
  std::vector<double> ratio_anchors;
  for (double r : ratios) {
    const double ws = std::nearbyint(std::sqrt(w * h / r));
    MkAnchor(ws, std::nearbyint(ws * r), x, y, &ratio_anchors);
  }
  std::vector<double> out;
  for (size_t i = 0; i < ratios.size(); ++i) {
    double rw, rh, rx, ry;
    WHCtr(&ratio_anchors[4 * i], &rw, &rh, &rx, &ry);
    for (double s : scales) MkAnchor(rw * s, rh * s, rx, ry, &out);
  }
  return std::vector<float>(out.begin(), out.end());
}

FasterRcnnModel::FasterRcnnModel(const std::string& prototxt, const std::string& caffemodel,
                                 const internal::GraphOptions& options)
    : net_(new caffe::NetParameter) {
  ReadPrototxt(prototxt, net_.get());
  const CaffeWeights weights = CaffeWeights::Load(caffemodel);
  graph_ = std::make_unique<internal::CaffeGraph>(*net_, weights, options);
  roi_begin_ = -1;
  for (int i = 0; i < graph_->NumLayers(); ++i)
    if (graph_->Layer(i).type() == "ROIPooling") {
      roi_begin_ = i;
      break;
    }
  if (roi_begin_ < 0) throw FormatError("no ROIPooling layer", prototxt);
  feature_blob_ = graph_->Layer(roi_begin_).bottom(0);
  rois_blob_ = graph_->Layer(roi_begin_).bottom(1);
  backbone_end_ = 0;
  for (int i = 0; i < roi_begin_; ++i)
    for (const auto& t : graph_->Layer(i).top())
      if (t == feature_blob_) backbone_end_ = i + 1;
}

FasterRcnnModel::~FasterRcnnModel() = default;

void Backbone::Run(internal::BlobMap* blobs) const { model_->graph().Run(0, model_->backbone_end(), blobs); }

void ProposalGenerator::Run(internal::BlobMap* blobs) const {
  const ExtractorConfig& config = config_;
  model_->graph().Run(model_->backbone_end(), model_->roi_begin(), blobs,
                      [&config](const caffe::LayerParameter& l, internal::BlobMap* b) {
                        if (l.type() != "Python" || l.python_param().layer() != "ProposalLayer" ||
                            l.bottom_size() < 3)
                          throw Error("layer '" + l.name() + "': type '" + l.type() + "' is not supported");
                        // The layer runs on the CPU in fp32 (as BUTD's numpy); only the small
                        // RPN maps travel.
                        const at::Tensor prob = b->at(l.bottom(0)).to(torch::kCPU, torch::kFloat).contiguous();
                        const at::Tensor deltas = b->at(l.bottom(1)).to(torch::kCPU, torch::kFloat).contiguous();
                        const at::Tensor info = b->at(l.bottom(2)).to(torch::kCPU, torch::kFloat).contiguous();
                        const int64_t n = prob.size(0);
                        if (deltas.size(0) != n || info.size(0) != n)
                          throw Error("layer '" + l.name() + "': batch sizes of its inputs differ");
                        std::vector<at::Tensor> rois(n);
                        // Images are independent; NMS inside runs serially per image then.
                        at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
                          for (int64_t i = begin; i < end; ++i)
                            rois[i] = Proposals(prob.slice(0, i, i + 1), deltas.slice(0, i, i + 1),
                                                info.slice(0, i, i + 1), config, i);
                        });
                        (*b)[l.top(0)] = torch::cat(rois, 0);
                      });
}

void RoiHeads::Run(internal::BlobMap* blobs) const {
  model_->graph().Run(model_->roi_begin(), model_->graph().NumLayers(), blobs);
}

}  // namespace uniter::extractor
