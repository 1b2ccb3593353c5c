#include "extractor/detector.h"

#include <torch/torch.h>

#include <chrono>

#include "common/error.h"
#include "extractor/box_selection.h"
#include "extractor/faster_rcnn.h"

namespace uniter::extractor {
namespace {

using Clock = std::chrono::steady_clock;

// Adds the time since the last lap to a StageTimes slot; on a GPU it first
// waits for the queued work, so each stage is charged its own kernels.
class Laps {
 public:
  Laps(const internal::CaffeGraph& graph, StageTimes* times) : graph_(graph), times_(times) {}
  void Lap(double StageTimes::*slot) {
    if (!times_) return;
    graph_.Synchronize();
    const auto now = Clock::now();
    times_->*slot += std::chrono::duration<double>(now - t_).count();
    t_ = now;
  }

 private:
  const internal::CaffeGraph& graph_;
  StageTimes* times_;
  Clock::time_point t_ = Clock::now();
};

// One image's regions (rows from `begin`) copied to the CPU: the selected
// ones (`index`, relative to begin; `boxes` holds that image's rows alone).
RegionFeatures Collect(const ImageInfo& img, const internal::BlobMap& blobs, int64_t begin, const at::Tensor& boxes, const std::vector<int64_t>& index, const std::vector<float>* conf) {
  RegionFeatures r;
  r.image_height = img.orig_height;
  r.image_width = img.orig_width;
  const at::Tensor& pool5 = blobs.at("pool5_flat");
  const at::Tensor idx = torch::tensor(index, torch::kLong).add_(begin).to(pool5.device());
  auto rows = [&](const at::Tensor& t) { return t.index_select(0, idx).to(torch::kCPU, torch::kFloat).contiguous(); };
  const at::Tensor feats = rows(pool5);
  const at::Tensor probs = rows(blobs.at("cls_prob"));
  const at::Tensor sel =
      boxes.index_select(0, torch::tensor(index, torch::kLong)).to(torch::kCPU, torch::kFloat).contiguous();
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
  auto best = [&](const at::Tensor& p, std::vector<int32_t>* ids, std::vector<float>* confs) {
    const auto [c, i] = p.slice(1, 1).max(1);
    const at::Tensor cc = c.contiguous(), ii = i.contiguous();
    for (int k = 0; k < r.num_boxes; ++k) {
      ids->push_back(static_cast<int32_t>(ii.data_ptr<int64_t>()[k] + 1));
      confs->push_back(cc.data_ptr<float>()[k]);
    }
  };
  best(probs, &r.object_ids, &r.object_conf);
  r.conf = conf ? *conf : r.object_conf;
  auto attr = blobs.find("attr_prob");
  if (attr != blobs.end()) best(rows(attr->second), &r.attr_ids, &r.attr_conf);
  return r;
}

}  // namespace

struct Detector::Impl {
  ExtractorConfig config;
  std::shared_ptr<const FasterRcnnModel> model;
  std::unique_ptr<Backbone> backbone;
  std::unique_ptr<ProposalGenerator> proposals;
  std::unique_ptr<RoiHeads> heads;
};

Detector::Detector(const std::string& prototxt, const std::string& caffemodel, const ExtractorConfig& config)
    : impl_(new Impl) {
  if (config.min_boxes < 0 || config.max_boxes < config.min_boxes)
    throw UsageError("need 0 <= min_boxes <= max_boxes, got " + std::to_string(config.min_boxes) + " and " +
                     std::to_string(config.max_boxes));
  impl_->config = config;
  impl_->model = std::make_shared<FasterRcnnModel>(
      prototxt, caffemodel, internal::GraphOptions{config.device, config.precision, config.channels_last});
  impl_->backbone = std::make_unique<Backbone>(impl_->model);
  impl_->proposals = std::make_unique<ProposalGenerator>(impl_->model, config);
  impl_->heads = std::make_unique<RoiHeads>(impl_->model);
}

Detector::~Detector() = default;

const ExtractorConfig& Detector::config() const { return impl_->config; }
const FasterRcnnModel& Detector::model() const { return *impl_->model; }

internal::BlobMap Detector::Forward(const at::Tensor& input, const std::vector<ImageInfo>& images,
                                    const at::Tensor* given_rois, StageTimes* times) const {
  torch::NoGradGuard no_grad;
  if (input.dim() != 4 || input.size(1) != 3 || input.size(0) != static_cast<int64_t>(images.size()))
    throw UsageError("Detector: input must be [B,3,H,W] with B = " + std::to_string(images.size()) +
                     " images, got " + c10::str(input.sizes()));
  const internal::CaffeGraph& graph = impl_->model->graph();
  Laps laps(graph, times);
  internal::BlobMap blobs;
  blobs["data"] = graph.ToInput(input);
  const int64_t b = input.size(0);
  at::Tensor info = torch::empty({b, 3}, torch::kFloat);
  for (int64_t i = 0; i < b; ++i) {
    info[i][0] = static_cast<float>(input.size(2));
    info[i][1] = static_cast<float>(input.size(3));
    info[i][2] = static_cast<float>(images[i].scale);
  }
  blobs["im_info"] = info;
  impl_->backbone->Run(&blobs);
  laps.Lap(&StageTimes::backbone);
  if (given_rois) {
    blobs[impl_->model->rois_blob()] = *given_rois;
  } else {
    if (!impl_->model->has_rpn()) throw UsageError("this prototxt has no RPN: give boxes");
    impl_->proposals->Run(&blobs);
  }
  laps.Lap(&StageTimes::proposals);
  impl_->heads->Run(&blobs);
  laps.Lap(&StageTimes::roi_heads);
  return blobs;
}

std::vector<RegionFeatures> Detector::Detect(const at::Tensor& input, const std::vector<ImageInfo>& images,
                                             StageTimes* times) const {
  torch::NoGradGuard no_grad;
  const internal::BlobMap blobs = Forward(input, images, nullptr, times);
  Laps laps(impl_->model->graph(), times);
  // The proposal layer leaves each image's rois together, in batch order, on the CPU.
  const at::Tensor rois = blobs.at(impl_->model->rois_blob()).to(torch::kCPU).contiguous();
  const at::Tensor counts = torch::bincount(rois.select(1, 0).to(torch::kLong), {}, static_cast<int64_t>(images.size()));
  std::vector<RegionFeatures> out;
  int64_t begin = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const int64_t end = begin + counts[static_cast<int64_t>(i)].item<int64_t>();
    if (end == begin)
      throw Error("no region proposal survived for image " + std::to_string(i) + " of the batch (image too small?)");
    // Unregressed ROI boxes back in image pixels; numpy divides float32 by a
    // float64 scale and rounds to float32 for NMS.
    const at::Tensor boxes =
        (rois.slice(0, begin, end).slice(1, 1, 5).to(torch::kDouble) / images[i].scale).to(torch::kFloat).contiguous();
    const BoxSelection sel = SelectBoxes(impl_->model->graph().ToDevice(boxes),
                                         blobs.at("cls_prob").slice(0, begin, end), impl_->config);
    out.push_back(Collect(images[i], blobs, begin, boxes, sel.index, &sel.conf));
    begin = end;
  }
  laps.Lap(&StageTimes::selection);
  return out;
}

RegionFeatures Detector::DetectBoxes(const at::Tensor& input, const ImageInfo& image, const std::vector<float>& boxes,
                                     StageTimes* times) const {
  torch::NoGradGuard no_grad;
  if (boxes.size() % 4) throw UsageError("given boxes must be 4 numbers each");
  const int64_t n = static_cast<int64_t>(boxes.size() / 4);
  const at::Tensor b = torch::from_blob(const_cast<float*>(boxes.data()), {n, 4}, torch::kFloat).clone();
  const at::Tensor rois = torch::cat({torch::zeros({n, 1}), b * static_cast<float>(image.scale)}, 1);
  const internal::BlobMap blobs = Forward(input, {image}, &rois, times);
  std::vector<int64_t> index(n);
  for (int64_t i = 0; i < n; ++i) index[i] = i;
  return Collect(image, blobs, 0, b, index, nullptr);
}

}  // namespace uniter::extractor
