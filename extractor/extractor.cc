#include "extractor/extractor.h"

#include <torch/torch.h>

#include <chrono>

#include "common/error.h"
#include "extractor/box_selection.h"
#include "extractor/faster_rcnn.h"
#include "extractor/preprocess.h"

namespace uniter::extractor {

struct Extractor::Impl {
  ExtractorConfig config;
  std::shared_ptr<const FasterRcnnModel> model;
  std::unique_ptr<Backbone> backbone;
  std::unique_ptr<ProposalGenerator> proposals;
  std::unique_ptr<RoiHeads> heads;

  // Runs the net on one image; rois either from the RPN or given.
  internal::BlobMap Run(const PreprocessedImage& img, const at::Tensor* given_rois, StageTimes* times) const {
    auto t = std::chrono::steady_clock::now();
    auto lap = [&](double* slot) {
      const auto now = std::chrono::steady_clock::now();
      if (times) *slot += std::chrono::duration<double>(now - t).count();
      t = now;
    };
    StageTimes unused;
    if (!times) times = &unused;
    internal::BlobMap blobs;
    // HWC float -> [1,3,H,W].
    const cv::Mat& m = img.blob;
    at::Tensor hwc = torch::from_blob(const_cast<float*>(m.ptr<float>()), {m.rows, m.cols, 3}, torch::kFloat);
    blobs["data"] = hwc.permute({2, 0, 1}).unsqueeze(0).contiguous();
    blobs["im_info"] = torch::tensor({static_cast<float>(m.rows), static_cast<float>(m.cols),
                                      static_cast<float>(img.scale)})
                           .view({1, 3});
    backbone->Run(&blobs);
    lap(&times->backbone);
    if (given_rois) {
      blobs[model->rois_blob()] = *given_rois;
    } else {
      if (!model->has_rpn()) throw UsageError("this prototxt has no RPN: give boxes");
      proposals->Run(&blobs);
    }
    lap(&times->proposals);
    heads->Run(&blobs);
    lap(&times->roi_heads);
    return blobs;
  }

  RegionFeatures Collect(const PreprocessedImage& img, const internal::BlobMap& blobs,
                         const at::Tensor& boxes, const std::vector<int64_t>& index,
                         const std::vector<float>* conf) const {
    RegionFeatures r;
    r.image_height = img.orig_height;
    r.image_width = img.orig_width;
    const at::Tensor idx = torch::tensor(index, torch::kLong);
    const at::Tensor feats = blobs.at("pool5_flat").index_select(0, idx).contiguous();
    const at::Tensor probs = blobs.at("cls_prob").index_select(0, idx).contiguous();
    const at::Tensor sel = boxes.index_select(0, idx).contiguous();
    r.num_boxes = static_cast<int>(index.size());
    r.feature_dim = static_cast<int>(feats.size(1));
    r.num_classes = static_cast<int>(probs.size(1));
    r.features.assign(feats.data_ptr<float>(), feats.data_ptr<float>() + feats.numel());
    r.soft_labels.assign(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
    r.boxes.assign(sel.data_ptr<float>(), sel.data_ptr<float>() + sel.numel());
    const float w = static_cast<float>(r.image_width), h = static_cast<float>(r.image_height);
    for (int i = 0; i < r.num_boxes; ++i) {
      const float* b = &r.boxes[4 * i];
      r.norm_bb.insert(r.norm_bb.end(), {b[0] / w, b[1] / h, b[2] / w, b[3] / h, (b[2] - b[0]) / w, (b[3] - b[1]) / h});
    }
    const auto [obj_conf, obj_id] = probs.slice(1, 1).max(1);
    for (int i = 0; i < r.num_boxes; ++i) {
      r.object_ids.push_back(static_cast<int32_t>(obj_id[i].item<int64_t>() + 1));
      r.object_conf.push_back(obj_conf[i].item<float>());
    }
    if (conf) {
      r.conf = *conf;
    } else {
      r.conf = r.object_conf;
    }
    auto attr = blobs.find("attr_prob");
    if (attr != blobs.end()) {
      const at::Tensor a = attr->second.index_select(0, idx);
      const auto [a_conf, a_id] = a.slice(1, 1).max(1);
      for (int i = 0; i < r.num_boxes; ++i) {
        r.attr_ids.push_back(static_cast<int32_t>(a_id[i].item<int64_t>() + 1));
        r.attr_conf.push_back(a_conf[i].item<float>());
      }
    }
    return r;
  }
};

Extractor::Extractor(const std::string& prototxt, const std::string& caffemodel, const ExtractorConfig& config)
    : impl_(new Impl) {
  if (config.min_boxes < 0 || config.max_boxes < config.min_boxes)
    throw UsageError("need 0 <= min_boxes <= max_boxes, got " + std::to_string(config.min_boxes) + " and " +
                     std::to_string(config.max_boxes));
  impl_->config = config;
  impl_->model = std::make_shared<FasterRcnnModel>(prototxt, caffemodel);
  impl_->backbone = std::make_unique<Backbone>(impl_->model);
  impl_->proposals = std::make_unique<ProposalGenerator>(impl_->model, config);
  impl_->heads = std::make_unique<RoiHeads>(impl_->model);
}

Extractor::~Extractor() = default;

RegionFeatures Extractor::Extract(const cv::Mat& bgr, StageTimes* times) const {
  torch::NoGradGuard no_grad;
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  const PreprocessedImage img = Preprocess(bgr, impl_->config);
  if (times) times->preprocess += std::chrono::duration<double>(Clock::now() - t0).count();
  const internal::BlobMap blobs = impl_->Run(img, nullptr, times);
  t0 = Clock::now();
  // Unregressed ROI boxes back in image pixels; numpy divides float32 by a
  // float64 scale and rounds to float32 for NMS.
  const at::Tensor rois = blobs.at(impl_->model->rois_blob());
  if (rois.size(0) == 0) throw Error("no region proposal survived (image too small?)");
  const at::Tensor boxes = (rois.slice(1, 1, 5).to(torch::kDouble) / img.scale).to(torch::kFloat).contiguous();
  const BoxSelection sel = SelectBoxes(boxes, blobs.at("cls_prob"), impl_->config);
  RegionFeatures out = impl_->Collect(img, blobs, boxes, sel.index, &sel.conf);
  if (times) times->selection += std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

std::vector<RegionFeatures> Extractor::ExtractBatch(const std::vector<cv::Mat>& bgr, StageTimes* times) const {
  std::vector<RegionFeatures> out;
  if (bgr.empty()) return out;
  const auto size = InputSize(bgr[0].rows, bgr[0].cols, impl_->config);
  for (const cv::Mat& m : bgr)
    if (InputSize(m.rows, m.cols, impl_->config) != size)
      throw UsageError("ExtractBatch: images of different network input sizes");
  // TODO(network): one batched forward pass.
  for (const cv::Mat& m : bgr) out.push_back(Extract(m, times));
  return out;
}

const ExtractorConfig& Extractor::config() const { return impl_->config; }

RegionFeatures Extractor::ExtractBoxes(const cv::Mat& bgr, const std::vector<float>& boxes) const {
  torch::NoGradGuard no_grad;
  if (boxes.size() % 4) throw UsageError("given boxes must be 4 numbers each");
  const PreprocessedImage img = Preprocess(bgr, impl_->config);
  const int64_t n = static_cast<int64_t>(boxes.size() / 4);
  const at::Tensor b = torch::from_blob(const_cast<float*>(boxes.data()), {n, 4}, torch::kFloat).clone();
  const at::Tensor rois = torch::cat({torch::zeros({n, 1}), b * static_cast<float>(img.scale)}, 1);
  const internal::BlobMap blobs = impl_->Run(img, &rois, nullptr);
  std::vector<int64_t> index(n);
  for (int64_t i = 0; i < n; ++i) index[i] = i;
  return impl_->Collect(img, blobs, b, index, nullptr);
}

}  // namespace uniter::extractor
