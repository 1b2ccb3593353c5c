// BUTD's Faster R-CNN as three stages over one loaded prototxt + caffemodel:
// Backbone (data -> the ROI pooling input, res4b22), ProposalGenerator (RPN
// layers and BUTD's Python ProposalLayer, in C++) and RoiHeads (roi_pool5,
// res5, pool5_flat, cls_prob, bbox_pred, the attribute head). Stages read and
// write Caffe blobs by their prototxt names in a BlobMap, so every
// intermediate blob can be compared with another Caffe runtime.
//
// Thread safety: after construction all methods are const and reentrant.
#pragma once

#include <memory>
#include <string>

#include "extractor/config.h"
#include "extractor/internal/caffe_graph.h"

namespace uniter::extractor {

// The parsed prototxt, its weights and the interpreter. Shared by the stages.
class FasterRcnnModel {
 public:
  // Throws FormatError naming the first missing or mis-shaped blob, and
  // UsageError for a device or precision that cannot run here.
  FasterRcnnModel(const std::string& prototxt, const std::string& caffemodel,
                  const internal::GraphOptions& options = {});
  ~FasterRcnnModel();

  const internal::CaffeGraph& graph() const { return *graph_; }
  // Blob names: the image input, the ROI pooling input and its rois.
  const std::string& feature_blob() const { return feature_blob_; }
  const std::string& rois_blob() const { return rois_blob_; }
  // Layer ranges [begin, end) of the three stages.
  int backbone_end() const { return backbone_end_; }
  int roi_begin() const { return roi_begin_; }
  bool has_rpn() const { return backbone_end_ < roi_begin_; }

 private:
  std::unique_ptr<caffe::NetParameter> net_;
  std::unique_ptr<internal::CaffeGraph> graph_;
  std::string feature_blob_, rois_blob_;
  int backbone_end_ = 0, roi_begin_ = 0;
};

// Reads "data" [B,3,H,W] (on the graph's device, see CaffeGraph::ToInput);
// writes every blob up to feature_blob().
class Backbone {
 public:
  explicit Backbone(std::shared_ptr<const FasterRcnnModel> model) : model_(std::move(model)) {}
  void Run(internal::BlobMap* blobs) const;

 private:
  std::shared_ptr<const FasterRcnnModel> model_;
};

// Reads feature_blob() and "im_info" [B,3] (height, width, scale per image);
// writes the RPN blobs and rois [K,5] (batch index, x1, y1, x2, y2 in resized
// pixels), each image's rois together, images in order. Per image:
// anchors (scales x ratios, feat_stride), deltas applied, clipped, boxes
// smaller than rpn_min_size * scale dropped, top pre_nms_top_n by score, NMS
// (Caffe convention), top post_nms_top_n.
class ProposalGenerator {
 public:
  ProposalGenerator(std::shared_ptr<const FasterRcnnModel> model, const ExtractorConfig& config)
      : model_(std::move(model)), config_(config) {}
  void Run(internal::BlobMap* blobs) const;

 private:
  std::shared_ptr<const FasterRcnnModel> model_;
  ExtractorConfig config_;
};

// Reads feature_blob() and rois_blob(); writes roipool5 ... cls_prob,
// bbox_pred, attr_prob.
class RoiHeads {
 public:
  explicit RoiHeads(std::shared_ptr<const FasterRcnnModel> model) : model_(std::move(model)) {}
  void Run(internal::BlobMap* blobs) const;

 private:
  std::shared_ptr<const FasterRcnnModel> model_;
};

// BUTD's anchors (rpn/generate_anchors.py, np.round half to even), [A,4] as
// x1, y1, x2, y2 floats, ratio-major. Exposed for tests.
std::vector<float> GenerateAnchors(int base_size, const std::vector<double>& ratios,
                                   const std::vector<double>& scales);

}  // namespace uniter::extractor
