// Caffe prototxt/caffemodel reading and the synthetic model writer, checked
// against independent readers: protoc --decode_raw (the wire format and
// Caffe's field numbers) and OpenCV's own Caffe importer (the weights).
#include <opencv2/dnn.hpp>

#include <cstring>
#include <regex>

#include "common/error.h"
#include "extractor/caffe.pb.h"
#include "extractor/caffe_model.h"
#include "extractor/synthetic_model.h"
#include "tests/test_util.h"

namespace uniter::extractor {
namespace {

using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::SharedDataDir;
using ::uniter::testing::TempDir;

std::string ButdPrototxt() { return SharedDataDir() + "/butd/test.prototxt"; }

std::vector<int64_t> ShapeOf(const std::vector<LayerParams>& params, const std::string& layer, size_t i) {
  for (const auto& p : params)
    if (p.name == layer && i < p.shapes.size()) return p.shapes[i];
  return {};
}

TEST(CaffeModel, ParsesButdPrototxt) {
  caffe::NetParameter net;
  ReadPrototxt(ButdPrototxt(), &net);
  // Layer count from the text itself.
  const std::string text = ReadFile(ButdPrototxt());
  const std::regex layer_re(R"((^|\n)\s*layer\s*\{)");
  const auto n = std::distance(std::sregex_iterator(text.begin(), text.end(), layer_re), std::sregex_iterator());
  EXPECT_EQ(net.layer_size(), n);
  const auto params = ParamShapes(net);
  // Sizes stated by the BUTD issue and the prototxt's num_output fields.
  EXPECT_EQ(ShapeOf(params, "conv1", 0), (std::vector<int64_t>{64, 3, 7, 7}));
  EXPECT_EQ(ShapeOf(params, "bn_conv1", 2), (std::vector<int64_t>{1}));
  EXPECT_EQ(ShapeOf(params, "res4b22_branch2c", 0), (std::vector<int64_t>{1024, 256, 1, 1}));
  EXPECT_EQ(ShapeOf(params, "rpn_cls_score", 0), (std::vector<int64_t>{24, 512, 1, 1}));
  EXPECT_EQ(ShapeOf(params, "rpn_bbox_pred", 1), (std::vector<int64_t>{48}));
  EXPECT_EQ(ShapeOf(params, "res5a_branch1", 0), (std::vector<int64_t>{2048, 1024, 1, 1}));
  EXPECT_EQ(ShapeOf(params, "cls_score", 0), (std::vector<int64_t>{1601, 2048}));
  EXPECT_EQ(ShapeOf(params, "bbox_pred", 0), (std::vector<int64_t>{6404, 2048}));
  EXPECT_EQ(ShapeOf(params, "cls_embedding", 0), (std::vector<int64_t>{1601, 256}));
  EXPECT_EQ(ShapeOf(params, "fc_attr", 0), (std::vector<int64_t>{512, 2304}));
  EXPECT_EQ(ShapeOf(params, "attr_score", 0), (std::vector<int64_t>{401, 512}));
  for (const auto& l : net.layer())
    if (l.type() == "ROIPooling") {
      EXPECT_EQ(l.roi_pooling_param().pooled_h(), 14u);
      EXPECT_FLOAT_EQ(l.roi_pooling_param().spatial_scale(), 0.0625f);
    }
}

TEST(CaffeModel, BadPrototxtNamesFileAndLine) {
  const std::string dir = TempDir("bad_prototxt");
  ::uniter::testing::WriteFile(dir + "/x.prototxt", "name: \"x\"\nlayer {\n  name: 3 3\n");
  try {
    caffe::NetParameter net;
    ReadPrototxt(dir + "/x.prototxt", &net);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("x.prototxt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3:"), std::string::npos) << e.what();
  }
}

class SyntheticModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("synthetic"));
    SyntheticModelOptions o;
    o.prototxt = ButdPrototxt();
    o.out_prototxt = *dir_ + "/narrow.prototxt";
    o.out_caffemodel = *dir_ + "/narrow.caffemodel";
    o.channel_divisor = 8;
    o.res4_blocks = 3;
    params_ = WriteSyntheticModel(o);
  }
  static std::string* dir_;
  static int64_t params_;
};
std::string* SyntheticModel::dir_ = nullptr;
int64_t SyntheticModel::params_ = 0;

// protoc --decode_raw knows no schema: it shows the raw field numbers.
TEST(CaffeModel, WireFormatHasCaffeFieldNumbers) {
  UNITER_REQUIRE_REFERENCE(::uniter::testing::Run("command -v protoc >/dev/null").exit_code == 0)
      << "protoc not installed (protobuf-compiler)";
  const std::string dir = TempDir("wire");
  caffe::NetParameter net;
  caffe::LayerParameter* l = net.add_layer();
  l->set_name("conv1");
  l->set_type("Convolution");
  caffe::BlobProto* b = l->add_blobs();
  b->mutable_shape()->add_dim(2);
  b->mutable_shape()->add_dim(3);
  for (int i = 0; i < 6; ++i) b->add_data(1.0f);
  caffe::V1LayerParameter* v1 = net.add_layers();
  v1->set_name("old");
  v1->add_blobs()->set_num(1);
  WriteCaffeModel(dir + "/w.caffemodel", net);
  const auto r = ::uniter::testing::Run("protoc --decode_raw < " + Quote(dir + "/w.caffemodel"));
  ASSERT_EQ(r.exit_code, 0);
  // NetParameter.layers = 2 { name = 4, blobs = 6 { num = 1 } }, then layer = 100
  // { name = 1, type = 2, blobs = 7 { data = 5 (packed floats), shape = 7 { dim = 1 (packed) } } }.
  const std::string want =
      "2 {\n  4: \"old\"\n  6 {\n    1: 1\n  }\n}\n"
      "100 {\n  1: \"conv1\"\n  2: \"Convolution\"\n  7 {\n"
      "    5: \"\\000\\000\\200?\\000\\000\\200?\\000\\000\\200?\\000\\000\\200?\\000\\000\\200?\\000\\000\\200?\"\n"
      "    7 {\n      1: \"\\002\\003\"\n    }\n  }\n}\n";
  EXPECT_EQ(r.out, want);
}

TEST_F(SyntheticModel, KeepsNamesNarrowsChannels) {
  caffe::NetParameter narrow;
  ReadPrototxt(*dir_ + "/narrow.prototxt", &narrow);
  const auto params = ParamShapes(narrow);
  EXPECT_EQ(ShapeOf(params, "conv1", 0), (std::vector<int64_t>{8, 3, 7, 7}));
  EXPECT_EQ(ShapeOf(params, "res4b22_branch2c", 0), (std::vector<int64_t>{128, 32, 1, 1}));
  EXPECT_TRUE(ShapeOf(params, "res4b2_branch2a", 0).empty());  // dropped block
  EXPECT_FALSE(ShapeOf(params, "res4b1_branch2a", 0).empty());
  EXPECT_EQ(ShapeOf(params, "cls_score", 0), (std::vector<int64_t>{1601, 256}));
  const CaffeWeights w = CaffeWeights::Load(*dir_ + "/narrow.caffemodel");
  int64_t total = 0;
  for (const auto& p : params)
    for (size_t i = 0; i < p.shapes.size(); ++i) {
      const CaffeBlob& b = w.Get(p.name, static_cast<int>(i), p.shapes[i]);
      total += static_cast<int64_t>(b.data.size());
    }
  EXPECT_EQ(total, params_);
}

TEST_F(SyntheticModel, OpenCvReadsTheSameWeights) {
  const CaffeWeights w = CaffeWeights::Load(*dir_ + "/narrow.caffemodel");
  cv::dnn::Net net = cv::dnn::readNetFromCaffe(*dir_ + "/narrow.prototxt", *dir_ + "/narrow.caffemodel");
  for (const std::string layer : {"conv1", "res4b22_branch2b", "rpn_cls_score", "cls_score", "attr_score"}) {
    const cv::Mat m = net.getParam(layer, 0);
    const CaffeBlob& b = w.Blobs(layer).at(0);
    ASSERT_EQ(static_cast<size_t>(m.total()), b.data.size()) << layer;
    EXPECT_EQ(0, std::memcmp(m.ptr<float>(), b.data.data(), b.data.size() * sizeof(float))) << layer;
  }
}

TEST_F(SyntheticModel, NamesFirstMissingOrMisshapedBlob) {
  const CaffeWeights w = CaffeWeights::Load(*dir_ + "/narrow.caffemodel");
  try {
    w.Get("res4b2_branch2a", 0, {32, 128, 1, 1});
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'res4b2_branch2a' blob 0: missing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("narrow.caffemodel"), std::string::npos);
  }
  try {
    w.Get("conv1", 0, {64, 3, 7, 7});
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [8,3,7,7], the network needs [64,3,7,7]"), std::string::npos)
        << e.what();
  }
}

TEST(CaffeModel, TruncatedModelIsAFormatError) {
  const std::string dir = TempDir("trunc");
  ::uniter::testing::WriteFile(dir + "/t.caffemodel", std::string("\xa2\x06\xff\xff\x01", 5));
  EXPECT_THROW(CaffeWeights::Load(dir + "/t.caffemodel"), FormatError);
  EXPECT_THROW(CaffeWeights::Load(dir + "/none.caffemodel"), IoError);
}

}  // namespace
}  // namespace uniter::extractor
