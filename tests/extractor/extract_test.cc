// End to end through the CLI: a synthetic narrow caffemodel, `uniter extract`
// on the real photos, the img_db read back the way UNITER's DetectFeatLmdb
// reads it (tests/featdb/uniter_ref.py) with BUTD's invariants checked; and
// bad images going to the rejects file while the run goes on.
#include <opencv2/imgcodecs.hpp>

#include <filesystem>

#include "featdb/array.h"
#include "featdb/img_db.h"
#include "tests/test_util.h"

namespace uniter::extractor {
namespace {

using ::uniter::testing::Python;
using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::SharedDataDir;
using ::uniter::testing::TempDir;
using ::uniter::testing::UniterBinary;

class ExtractCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("extract_cli"));
    const auto r = ::uniter::testing::Run(Quote(UniterBinary()) + " extract-tools make-caffemodel --prototxt " +
                       Quote(SharedDataDir() + "/butd/test.prototxt") + " --out " + Quote(*dir_ + "/n.caffemodel") +
                       " --out-prototxt " + Quote(*dir_ + "/n.prototxt") +
                       " --channel-divisor 8 --res4-blocks 3 --seed 5 2>&1");
    make_ok_ = r.exit_code == 0;
    make_out_ = new std::string(r.out);
  }
  static std::string Extract(const std::string& images, const std::string& out, const std::string& extra) {
    return Quote(UniterBinary()) + " extract --quiet --images " + Quote(images) + " --prototxt " +
           Quote(*dir_ + "/n.prototxt") + " --weights " + Quote(*dir_ + "/n.caffemodel") + " --out " + Quote(out) +
           " " + extra + " 2>&1";
  }
  static std::string* dir_;
  static std::string* make_out_;
  static bool make_ok_;
};
std::string* ExtractCli::dir_ = nullptr;
std::string* ExtractCli::make_out_ = nullptr;
bool ExtractCli::make_ok_ = false;

TEST_F(ExtractCli, WritesImgDbUniterReads) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  ASSERT_TRUE(make_ok_) << *make_out_;
  const std::string images = SharedDataDir() + "/butd/images";
  int n_images = 0;
  for (const auto& e : std::filesystem::directory_iterator(images)) n_images += e.is_regular_file();
  const std::string out = *dir_ + "/img_db";
  const auto r = ::uniter::testing::Run(Extract(images, out, ""));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(std::to_string(n_images) + " written"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/feat_th0.2_max100_min10"));
  const std::string check = std::string(UNITER_EXTRACTOR_TEST_DIR) + "/check_img_db.py";
  const auto c = ::uniter::testing::Run(Quote(Python()) + " " + Quote(check) + " " + Quote(out) + " 0.2 100 10 2>&1");
  EXPECT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("\"feat_dim\": 256"), std::string::npos) << c.out;  // 2048 / 8
  EXPECT_NE(c.out.find("\"problems\": []"), std::string::npos) << c.out;

  // 36/36 reproduces the fixed "36 boxes" features.
  const std::string out36 = *dir_ + "/img_db36";
  const auto r36 = ::uniter::testing::Run(Extract(images, out36, "--min-boxes 36 --max-boxes 36"));
  ASSERT_EQ(r36.exit_code, 0) << r36.out;
  const auto c36 = ::uniter::testing::Run(Quote(Python()) + " " + Quote(check) + " " + Quote(out36) + " 0.2 36 36 2>&1");
  EXPECT_EQ(c36.exit_code, 0) << c36.out;

  // --resume skips what is there.
  const auto again = ::uniter::testing::Run(Extract(images, out, "--resume"));
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("0 written, " + std::to_string(n_images) + " already there"), std::string::npos)
      << again.out;
}

TEST_F(ExtractCli, BadImagesAreRejectedAndTheRunGoesOn) {
  ASSERT_TRUE(make_ok_) << *make_out_;
  const std::string images = TempDir("bad_images");
  ::uniter::testing::WriteFile(images + "/empty.jpg", "");
  ::uniter::testing::WriteFile(images + "/text.jpg", "this is not an image\n");
  const std::string good = ReadFile(SharedDataDir() + "/butd/images/000456.jpg");
  ::uniter::testing::WriteFile(images + "/header_only.jpg", good.substr(0, 20));
  cv::imwrite(images + "/gray.png", cv::Mat(50, 80, CV_8UC1, cv::Scalar(90)));
  cv::imwrite(images + "/deep16.png", cv::Mat(40, 30, CV_16UC3, cv::Scalar(1000, 20000, 60000)));
  cv::imwrite(images + "/alpha.png", cv::Mat(30, 40, CV_8UC4, cv::Scalar(1, 2, 3, 4)));
  cv::imwrite(images + "/tiny.png", cv::Mat(1, 1, CV_8UC3, cv::Scalar(200, 100, 50)));
  const std::string out = *dir_ + "/bad_db";
  const auto r = ::uniter::testing::Run(Extract(images, out, "--rejects " + Quote(*dir_ + "/rejects.jsonl")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Gray, 16-bit and alpha images are converted to 8-bit BGR as BUTD's
  // cv2.imread does; a 1x1 image leaves no proposal of the minimum size.
  EXPECT_NE(r.out.find("3 written"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 rejected"), std::string::npos) << r.out;
  const std::string rejects = ReadFile(*dir_ + "/rejects.jsonl");
  for (const char* name : {"empty.jpg", "text.jpg", "header_only.jpg", "tiny.png"})
    EXPECT_NE(rejects.find(name), std::string::npos) << rejects;
}

TEST_F(ExtractCli, GivenBoxesAreStoredInOrder) {
  ASSERT_TRUE(make_ok_) << *make_out_;
  const std::string boxes = *dir_ + "/boxes.json";
  ::uniter::testing::WriteFile(
      boxes, R"({"000456.jpg": [[10, 20, 200, 150], [0, 0, 99, 49], [50.5, 60.5, 300, 280]], "000542": [[5, 5, 60, 60]]})");
  const std::string out = *dir_ + "/gt_db";
  const auto r = ::uniter::testing::Run(Extract(SharedDataDir() + "/butd/images", out, "--boxes " + Quote(boxes)));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("2 written"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 rejected"), std::string::npos) << r.out;  // the images without boxes
  const featdb::ImgDbReader db(out + "/all");
  const auto rec = db.Get("000456.npz");
  ASSERT_TRUE(rec.has_value());
  const featdb::Array* feats = featdb::FindArray(*rec, "features");
  const featdb::Array* bb = featdb::FindArray(*rec, "boxes");
  ASSERT_TRUE(feats && bb);
  EXPECT_EQ(feats->shape, (std::vector<int64_t>{3, 256}));
  const std::vector<float> got = bb->ToFloat32();  // stored as float16
  const std::vector<float> want{10, 20, 200, 150, 0, 0, 99, 49, 50.5, 60.5, 300, 280};
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.25) << i;
}

TEST_F(ExtractCli, MissingBlobIsOneClearLine) {
  ASSERT_TRUE(make_ok_) << *make_out_;
  // The full prototxt with the narrow weights: conv1 is 8 wide, the net wants 64.
  const auto r = ::uniter::testing::Run(Quote(UniterBinary()) + " extract --quiet --images " +
                     Quote(SharedDataDir() + "/butd/images") + " --prototxt " +
                     Quote(SharedDataDir() + "/butd/test.prototxt") + " --weights " +
                     Quote(*dir_ + "/n.caffemodel") + " --out " + Quote(*dir_ + "/never") + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("n.caffemodel: layer 'conv1' blob 0: has shape [8,3,7,7], the network needs [64,3,7,7]"),
            std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace uniter::extractor
