// The built-in BUTD net (extractor/butd_net.h) is the network of BUTD's own
// test.prototxt and test_gt.prototxt: parsed by protobuf's text parser into
// Caffe's schema, every layer, type, blob name and parameter is equal. And
// `uniter extract` without --prototxt runs it.
#include <google/protobuf/util/message_differencer.h>

#include "extractor/butd_net.h"
#include "extractor/caffe.pb.h"
#include "extractor/caffe_model.h"
#include "tests/test_util.h"

namespace uniter::extractor {
namespace {

using ::uniter::testing::Quote;
using ::uniter::testing::SharedDataDir;

void ExpectSameNet(const std::string& builtin, const std::string& file) {
  caffe::NetParameter ours, theirs;
  ReadPrototxt(builtin, &ours);
  ReadPrototxt(file, &theirs);
  ASSERT_GT(theirs.layer_size(), 400) << file;
  EXPECT_EQ(ours.layer_size(), theirs.layer_size());
  for (int i = 0; i < std::min(ours.layer_size(), theirs.layer_size()); ++i)
    ASSERT_EQ(ours.layer(i).name(), theirs.layer(i).name()) << "layer #" << i;
  google::protobuf::util::MessageDifferencer diff;
  std::string report;
  diff.ReportDifferencesToString(&report);
  EXPECT_TRUE(diff.Compare(ours, theirs)) << builtin << " vs " << file << ":\n" << report.substr(0, 4000);
}

TEST(ButdNet, IsTestPrototxt) {
  ExpectSameNet(kButdTestPrototxt, SharedDataDir() + "/butd/test.prototxt");
}

TEST(ButdNet, IsTestGtPrototxt) {
  ExpectSameNet(kButdTestGtPrototxt, SharedDataDir() + "/butd/test_gt.prototxt");
}

TEST(ButdNet, ParamShapesAreResNet101s) {
  caffe::NetParameter net;
  ReadPrototxt(kButdTestPrototxt, &net);
  int64_t params = 0;
  for (const LayerParams& l : ParamShapes(net))
    for (const auto& s : l.shapes) {
      int64_t n = 1;
      for (int64_t d : s) n *= d;
      params += n;
    }
  // What `uniter extract-tools make-caffemodel` reports for the full-size
  // BUTD model (bench/RESULTS.md), batch-norm statistics included.
  EXPECT_EQ(params, 65559622);
}

TEST(ButdNet, ExtractUsesItWithoutPrototxt) {
  // A narrow model's weights do not fit the built-in full-size net: the
  // error names the first layer whose blob differs, so the built-in net was used.
  const std::string dir = ::uniter::testing::TempDir("butd_net_cli");
  const auto make = ::uniter::testing::Run(
      Quote(::uniter::testing::UniterBinary()) + " extract-tools make-caffemodel --out " + Quote(dir + "/n.caffemodel") +
      " --channel-divisor 8 --res4-blocks 2 2>&1");
  ASSERT_EQ(make.exit_code, 0) << make.out;
  const auto r = ::uniter::testing::Run(Quote(::uniter::testing::UniterBinary()) + " extract --quiet --images " +
                                        Quote(SharedDataDir() + "/butd/images") + " --weights " +
                                        Quote(dir + "/n.caffemodel") + " --out " + Quote(dir + "/out") + " 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("layer 'conv1' blob 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[64,3,7,7]"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace uniter::extractor
