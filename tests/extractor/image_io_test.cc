// Image headers and decoding (extractor/image_io.h): sizes read without
// decoding agree with PIL's and OpenCV's decoders, cut files are caught
// wherever they are cut, and the pixel limit applies before decoding.
#include "extractor/image_io.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "tests/test_util.h"

namespace uniter::extractor {
namespace {

using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::SharedDataDir;

TEST(ImageIo, JpegSizeMatchesPil) {
  UNITER_REQUIRE_PYTHON_MODULE("PIL");
  const std::string dir = SharedDataDir() + "/butd/images";
  const auto pil = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c \"import glob,sys; from PIL import Image; "
      "[print(f, *Image.open(f).size) for f in sorted(glob.glob(sys.argv[1] + '/*.jpg'))]\" " + Quote(dir));
  ASSERT_EQ(pil.exit_code, 0);
  std::istringstream lines(pil.out);
  int n = 0;
  for (std::string f; lines >> f;) {
    int64_t w = 0, h = 0;
    lines >> w >> h;
    const ImageHeader header = ReadImageHeader(ReadFile(f));
    EXPECT_EQ(header.format, ImageFormat::kJpeg) << f;
    EXPECT_EQ(header.width, w) << f;
    EXPECT_EQ(header.height, h) << f;
    EXPECT_EQ(header.truncated, "") << f;
    ++n;
  }
  EXPECT_GT(n, 0);
}

TEST(ImageIo, PngBmpWebpSizesMatchOpenCv) {
  const std::string dir = ::uniter::testing::TempDir("image_io_formats");
  const cv::Mat img(37, 53, CV_8UC3, cv::Scalar(10, 200, 30));
  for (const char* ext : {".png", ".bmp", ".webp"}) {
    const std::string path = dir + "/x" + ext;
    if (!cv::imwrite(path, img)) GTEST_SKIP() << "this OpenCV cannot write " << ext;
    const cv::Mat back = cv::imread(path, cv::IMREAD_UNCHANGED);
    const ImageHeader h = ReadImageHeader(ReadFile(path));
    EXPECT_NE(h.format, ImageFormat::kUnknown) << ext;
    EXPECT_EQ(h.width, back.cols) << ext;
    EXPECT_EQ(h.height, back.rows) << ext;
    EXPECT_EQ(h.truncated, "") << ext;
    EXPECT_EQ(ReadImage(path).size(), back.size()) << ext;
  }
}

TEST(ImageIo, CutFilesAreCaughtWhereverCut) {
  const std::string jpg = ReadFile(SharedDataDir() + "/butd/images/000542.jpg");
  std::vector<uchar> png_bytes;
  cv::imencode(".png", cv::imread(SharedDataDir() + "/butd/images/000542.jpg"), png_bytes);
  const std::string png(png_bytes.begin(), png_bytes.end());
  for (const std::string* whole : {&jpg, &png}) {
    ASSERT_EQ(ReadImageHeader(*whole).truncated, "");
    for (size_t cut = 8; cut < whole->size(); cut += whole->size() / 97 + 1)
      EXPECT_NE(ReadImageHeader(std::string_view(*whole).substr(0, cut)).truncated, "") << cut;
    EXPECT_NE(ReadImageHeader(std::string_view(*whole).substr(0, whole->size() - 1)).truncated, "");
  }
}

TEST(ImageIo, PixelLimitAppliesBeforeDecoding) {
  const std::string dir = ::uniter::testing::TempDir("image_io_limit");
  const std::string path = dir + "/big.png";
  cv::imwrite(path, cv::Mat(300, 400, CV_8UC3, cv::Scalar(1, 2, 3)));
  EXPECT_EQ(ReadImage(path, {120000}).size(), cv::Size(400, 300));
  try {
    ReadImage(path, {119999});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), path);
    EXPECT_EQ(e.message(), "PNG of 400x300 = 120000 pixels, over --max-pixels 119999 (not decoded)");
  }
  EXPECT_EQ(ReadImage(path, {0}).size(), cv::Size(400, 300));  // no limit
}

// Decoding the bytes read for the header check gives exactly what
// cv::imread(path) (cv2.imread) gives: EXIF rotation, gray, 16-bit and
// alpha conversions included. The rotated JPEG is written by PIL.
TEST(ImageIo, DecodesAsImreadDoes) {
  UNITER_REQUIRE_PYTHON_MODULE("PIL");
  const std::string dir = ::uniter::testing::TempDir("image_io_imread");
  std::vector<std::string> paths;
  for (const char* name : {"000456.jpg", "000542.jpg"}) paths.push_back(SharedDataDir() + "/butd/images/" + name);
  const cv::Mat photo = cv::imread(paths[0]);
  cv::Mat gray, rgba, deep;
  cv::cvtColor(photo, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(photo, rgba, cv::COLOR_BGR2BGRA);
  photo.convertTo(deep, CV_16UC3, 257.0);
  for (const auto& [name, m] : {std::pair{"gray.png", gray}, {"rgba.png", rgba}, {"deep.png", deep}}) {
    ASSERT_TRUE(cv::imwrite(dir + "/" + name, m));
    paths.push_back(dir + "/" + name);
  }
  const std::string rotated = dir + "/rotated.jpg";
  const auto r = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c \"import sys; from PIL import Image; im = Image.open(sys.argv[1]); "
      "exif = im.getexif(); exif[0x0112] = 6; im.save(sys.argv[2], exif=exif.tobytes())\" " + Quote(paths[0]) + " " +
      Quote(rotated) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  paths.push_back(rotated);
  for (const std::string& path : paths) {
    const cv::Mat want = cv::imread(path, cv::IMREAD_COLOR);
    const cv::Mat got = ReadImage(path);
    ASSERT_EQ(got.size(), want.size()) << path;
    ASSERT_EQ(got.type(), want.type()) << path;
    EXPECT_EQ(cv::norm(got, want, cv::NORM_INF), 0) << path;
  }
  EXPECT_EQ(ReadImage(rotated).size(), cv::Size(photo.rows, photo.cols));  // rotated by 90 degrees
}

}  // namespace
}  // namespace uniter::extractor
