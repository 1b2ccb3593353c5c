// The LibTorch network against OpenCV's Caffe importer running the same
// prototxt and synthetic caffemodel (narrow, 3 res4 blocks): backbone, RPN,
// pooled features, class and attribute scores within 1e-4 relative in fp32,
// with NCHW and with channels-last (NHWC) convolutions.
// OpenCV lacks the Python proposal layer, ArgMax and Embed, so its prototxt
// takes the rois as an input (as BUTD's test_gt.prototxt does) and the
// attribute head runs as a second small net on our concat_pool5.
#include <torch/torch.h>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <filesystem>
#include <set>

#include "extractor/caffe.pb.h"
#include "extractor/caffe_model.h"
#include "extractor/extractor.h"
#include "extractor/faster_rcnn.h"
#include "extractor/preprocess.h"
#include "extractor/synthetic_model.h"
#include "tests/extractor/compare_util.h"
#include "tests/test_util.h"

namespace uniter::extractor {
namespace {

using ::uniter::testing::SharedDataDir;
using ::uniter::testing::TempDir;

at::Tensor FromMat(const cv::Mat& m) {
  std::vector<int64_t> shape(m.size.p, m.size.p + m.dims);
  return torch::from_blob(const_cast<float*>(m.ptr<float>()), shape, torch::kFloat).clone();
}

cv::Mat ToMat(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  std::vector<int> shape(c.sizes().begin(), c.sizes().end());
  return cv::Mat(static_cast<int>(shape.size()), shape.data(), CV_32F, c.data_ptr<float>()).clone();
}

// max |a - b| / max |b|.
double RelErr(const at::Tensor& a, const at::Tensor& b) {
  return (a.reshape(-1) - b.reshape(-1)).abs().max().item<double>() / std::max(1e-20, b.abs().max().item<double>());
}

class NetworkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("network"));
    compare::WriteNarrowModel(SharedDataDir() + "/butd/test.prototxt", *dir_);
  }
  static std::string* dir_;
};
std::string* NetworkTest::dir_ = nullptr;

// The OpenCV-ready prototxts: rois as an input instead of the proposal layer,
// the attribute head split off.
void WriteOpenCvPrototxts(const std::string& narrow, const std::string& main_out, const std::string& attr_out,
                          int64_t attr_in) {
  caffe::NetParameter net, main, attr;
  ReadPrototxt(narrow, &net);
  main.set_name(net.name());
  const std::set<std::string> attr_layers{"fc_attr", "relu_attr", "attr_score", "attr_prob"};
  const std::set<std::string> dropped{"proposal", "predicted_cls", "cls_embedding", "cls_embedding_flat",
                                      "concat_pool5"};
  main.add_input("data");
  *main.add_input_shape() = net.input_shape(0);
  main.add_input("rois");
  main.add_input_shape()->add_dim(1);
  main.mutable_input_shape(1)->add_dim(5);
  attr.add_input("concat_pool5");
  attr.add_input_shape()->add_dim(1);
  attr.mutable_input_shape(0)->add_dim(attr_in);
  for (const auto& l : net.layer()) {
    if (l.type() == "Python" || dropped.count(l.name())) continue;
    *(attr_layers.count(l.name()) ? attr.add_layer() : main.add_layer()) = l;
  }
  WritePrototxt(main_out, main);
  WritePrototxt(attr_out, attr);
}

TEST_F(NetworkTest, MatchesOpenCvCaffeImporter) {
  const std::string image_dir = SharedDataDir() + "/butd/images";
  std::string image;
  for (const auto& e : std::filesystem::directory_iterator(image_dir)) image = std::max(image, e.path().string());
  ASSERT_FALSE(image.empty());
  const cv::Mat bgr = cv::imread(image, cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty());
  ExtractorConfig config;
  const PreprocessedImage img = Preprocess(bgr, config);

  auto model = std::make_shared<FasterRcnnModel>(*dir_ + "/narrow.prototxt", *dir_ + "/narrow.caffemodel");
  internal::BlobMap blobs;
  const cv::Mat& m = img.blob;
  blobs["data"] = torch::from_blob(const_cast<float*>(m.ptr<float>()), {m.rows, m.cols, 3}, torch::kFloat)
                      .permute({2, 0, 1})
                      .unsqueeze(0)
                      .contiguous();
  blobs["im_info"] = torch::tensor({float(m.rows), float(m.cols), float(img.scale)}).view({1, 3});
  Backbone(model).Run(&blobs);
  ProposalGenerator(model, config).Run(&blobs);
  RoiHeads(model).Run(&blobs);
  const at::Tensor rois = blobs.at("rois");
  ASSERT_EQ(rois.dim(), 2);
  ASSERT_GT(rois.size(0), 10);
  ASSERT_LE(rois.size(0), 300);

  // The proposals against BUTD's proposal_layer.py run in numpy on our RPN outputs.
  if (::uniter::testing::PythonHas("torchvision")) {
    const std::string ref = TempDir("proposals");
    auto write = [&](const std::string& name, const at::Tensor& t) {
      const at::Tensor c = t.contiguous();
      ::uniter::testing::WriteFile(ref + "/" + name,
                                   std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
    };
    const at::Tensor& prob = blobs.at("rpn_cls_prob_reshape");
    write("prob.bin", prob);
    write("deltas.bin", blobs.at("rpn_bbox_pred"));
    write("im_info.bin", blobs.at("im_info"));
    ::uniter::testing::WriteFile(ref + "/meta.json", "{\"h\":" + std::to_string(prob.size(2)) +
                                                         ",\"w\":" + std::to_string(prob.size(3)) + "}");
    const auto r = ::uniter::testing::Run(::uniter::testing::Quote(::uniter::testing::Python()) + " " +
                                          ::uniter::testing::Quote(std::string(UNITER_EXTRACTOR_TEST_DIR) +
                                                                   "/butd_proposal_ref.py") +
                                          " " + ::uniter::testing::Quote(ref) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const std::string bytes = ::uniter::testing::ReadFile(ref + "/rois.bin");
    const at::Tensor want =
        torch::from_blob(const_cast<char*>(bytes.data()), {static_cast<int64_t>(bytes.size() / 20), 5}, torch::kFloat)
            .clone();
    ASSERT_EQ(want.sizes(), rois.sizes());
    const double max_diff = (want - rois).abs().max().item<double>();
    std::printf("rois                   %-28s max |diff| vs BUTD proposal_layer.py %.2e px\n",
                c10::str(rois.sizes()).c_str(), max_diff);
    EXPECT_LT(max_diff, 1e-3);
  }

  const int64_t attr_in = blobs.at("concat_pool5").size(1);
  WriteOpenCvPrototxts(*dir_ + "/narrow.prototxt", *dir_ + "/cv_main.prototxt", *dir_ + "/cv_attr.prototxt",
                       attr_in);
  cv::dnn::Net net = cv::dnn::readNetFromCaffe(*dir_ + "/cv_main.prototxt", *dir_ + "/narrow.caffemodel");
  net.enableFusion(false);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setInput(ToMat(blobs.at("data")), "data");
  net.setInput(ToMat(rois), "rois");
  const std::vector<std::pair<std::string, std::string>> pairs{
      {"res4b22_relu", "res4b22"},         {"rpn_cls_prob_reshape", "rpn_cls_prob_reshape"},
      {"rpn_bbox_pred", "rpn_bbox_pred"},  {"roi_pool5", "roipool5"},
      {"pool5_flat", "pool5_flat"},        {"cls_prob", "cls_prob"},
      {"bbox_pred", "bbox_pred"}};
  std::vector<std::string> names;
  for (const auto& p : pairs) names.push_back(p.first);
  std::vector<cv::Mat> outs;
  net.forward(outs, names);
  for (size_t i = 0; i < pairs.size(); ++i) {
    const at::Tensor theirs = FromMat(outs[i]);
    const at::Tensor& ours = blobs.at(pairs[i].second);
    ASSERT_EQ(theirs.numel(), ours.numel()) << pairs[i].second;
    const double err = RelErr(ours, theirs);
    std::printf("%-22s %-28s rel err vs OpenCV %.2e\n", pairs[i].second.c_str(), c10::str(ours.sizes()).c_str(), err);
    EXPECT_LT(err, 1e-4) << pairs[i].second;
    EXPECT_GT(theirs.abs().max().item<float>(), 0.f) << pairs[i].second;
  }

  // Channels-last (NHWC) convolutions against the same OpenCV outputs, on the
  // same rois.
  auto model_cl = std::make_shared<FasterRcnnModel>(*dir_ + "/narrow.prototxt", *dir_ + "/narrow.caffemodel",
                                                    internal::GraphOptions{"cpu", "fp32", true});
  internal::BlobMap cl{{"data", model_cl->graph().ToInput(blobs.at("data"))}, {"im_info", blobs.at("im_info")}};
  Backbone(model_cl).Run(&cl);
  ProposalGenerator(model_cl, config).Run(&cl);
  cl["rois"] = rois;
  RoiHeads(model_cl).Run(&cl);
  EXPECT_TRUE(cl.at("res4b22").is_contiguous(at::MemoryFormat::ChannelsLast));
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double err = RelErr(cl.at(pairs[i].second), FromMat(outs[i]));
    std::printf("%-22s channels-last rel err vs OpenCV %.2e\n", pairs[i].second.c_str(), err);
    EXPECT_LT(err, 1e-4) << pairs[i].second << " (channels-last)";
  }

  cv::dnn::Net attr = cv::dnn::readNetFromCaffe(*dir_ + "/cv_attr.prototxt", *dir_ + "/narrow.caffemodel");
  attr.enableFusion(false);
  attr.setInput(ToMat(blobs.at("concat_pool5")), "concat_pool5");
  const at::Tensor attr_prob = FromMat(attr.forward("attr_prob"));
  std::printf("%-22s %-28s rel err vs OpenCV %.2e\n", "attr_prob", c10::str(attr_prob.sizes()).c_str(),
              RelErr(blobs.at("attr_prob"), attr_prob));
  EXPECT_LT(RelErr(blobs.at("attr_prob"), attr_prob), 1e-4);

  // The class embedding is row argmax(cls_score) of the Embed weights.
  const CaffeWeights w = CaffeWeights::Load(*dir_ + "/narrow.caffemodel");
  const auto& embed = w.Blobs("cls_embedding").at(0);
  const at::Tensor table =
      torch::from_blob(const_cast<float*>(embed.data.data()), {embed.shape[0], embed.shape[1]}, torch::kFloat);
  const at::Tensor want = table.index_select(0, blobs.at("cls_score").argmax(1));
  EXPECT_TRUE(torch::equal(blobs.at("cls_embedding").reshape(want.sizes()), want));
}

// Given-box mode (test_gt.prototxt style) on the boxes the RPN path picked
// yields their features again: the two paths share the ROI heads.
TEST_F(NetworkTest, GivenBoxesReproduceSelectedFeatures) {
  const cv::Mat bgr = cv::imread(SharedDataDir() + "/butd/images/000456.jpg", cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty());
  const Extractor ex(*dir_ + "/narrow.prototxt", *dir_ + "/narrow.caffemodel", ExtractorConfig{});
  const RegionFeatures f = ex.Extract(bgr);
  ASSERT_GE(f.num_boxes, 10);
  const RegionFeatures g = ex.ExtractBoxes(bgr, f.boxes);
  ASSERT_EQ(g.num_boxes, f.num_boxes);
  ASSERT_EQ(g.features.size(), f.features.size());
  // Boxes scaled back and forth may round to another cell at a half-cell edge; allow one such row.
  int same = 0;
  for (int i = 0; i < f.num_boxes; ++i) {
    bool eq = true;
    for (int k = 0; k < f.feature_dim; ++k) {
      const float a = f.features[i * f.feature_dim + k], b = g.features[i * f.feature_dim + k];
      eq = eq && std::abs(a - b) <= 1e-5f * std::max(1.f, std::abs(a));
    }
    same += eq;
  }
  EXPECT_GE(same, f.num_boxes - 1);
  for (float v : f.norm_bb) {
    EXPECT_GE(v, 0.f);
    EXPECT_LE(v, 1.f);
  }
}

TEST(Anchors, MatchShaoqingsMatlabAnchors) {
  // The table in BUTD's rpn/generate_anchors.py header (Faster R-CNN's MATLAB
  // anchors, 1-based) for scales 8, 16, 32; Python's are one less.
  const float matlab[9][4] = {{-83, -39, 100, 56},   {-175, -87, 192, 104},  {-359, -183, 376, 200},
                              {-55, -55, 72, 72},    {-119, -119, 136, 136}, {-247, -247, 264, 264},
                              {-35, -79, 52, 96},    {-79, -167, 96, 184},   {-167, -343, 184, 360}};
  const std::vector<float> a = GenerateAnchors(16, {0.5, 1, 2}, {8, 16, 32});
  ASSERT_EQ(a.size(), 36u);
  for (int i = 0; i < 9; ++i)
    for (int k = 0; k < 4; ++k) EXPECT_EQ(a[4 * i + k], matlab[i][k] - 1) << i << "," << k;
  EXPECT_EQ(GenerateAnchors(16, {0.5, 1, 2}, {4, 8, 16, 32}).size(), 48u);
}

}  // namespace
}  // namespace uniter::extractor
