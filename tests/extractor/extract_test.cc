// End to end through the CLI: a synthetic narrow caffemodel, `uniter extract`
// on the real photos, the img_db read back the way UNITER's DetectFeatLmdb
// reads it (tests/featdb/uniter_ref.py) with BUTD's invariants checked; and
// bad images going to the rejects file while the run goes on; the npz and TSV
// outputs read as convert_imgdir.py and LXMERT's load_obj_tsv read them;
// batching, devices and shards + merge leaving the features unchanged.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

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

std::string TestDir() { return UNITER_EXTRACTOR_TEST_DIR; }

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
  UNITER_REQUIRE_PYTHON_MODULE("PIL");
  const std::string images = TempDir("bad_images");
  const std::string photo = SharedDataDir() + "/butd/images/000456.jpg";
  // CMYK JPEG, cut JPEG and PNG, GIF and a 30000x30000 PNG bomb, written by PIL/zlib.
  const auto made = ::uniter::testing::Run(Quote(Python()) + " " + Quote(TestDir() + "/make_bad_images.py") + " " +
                                           Quote(images) + " " + Quote(photo) + " 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.out;
  ::uniter::testing::WriteFile(images + "/empty.jpg", "");
  ::uniter::testing::WriteFile(images + "/text.jpg", "this is not an image\n");
  ::uniter::testing::WriteFile(images + "/header_only.jpg", ReadFile(photo).substr(0, 20));
  cv::imwrite(images + "/gray.png", cv::Mat(50, 80, CV_8UC1, cv::Scalar(90)));
  cv::imwrite(images + "/deep16.png", cv::Mat(40, 30, CV_16UC3, cv::Scalar(1000, 20000, 60000)));
  cv::imwrite(images + "/alpha.png", cv::Mat(30, 40, CV_8UC4, cv::Scalar(1, 2, 3, 4)));
  cv::imwrite(images + "/tiny.png", cv::Mat(1, 1, CV_8UC3, cv::Scalar(200, 100, 50)));
  // The same network input size as tiny.png: one batch, where tiny's failure
  // must not take the square image with it.
  cv::Mat square;
  cv::resize(cv::imread(photo), square, cv::Size(300, 300));
  cv::imwrite(images + "/square.png", square);
  const std::string out = *dir_ + "/bad_db";
  const std::string rejects_path = *dir_ + "/rejects.jsonl";
  const auto r = ::uniter::testing::Run(Extract(images, out, "--batch 2 --rejects " + Quote(rejects_path)));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Gray, 16-bit, alpha and CMYK are converted to 8-bit BGR as cv2.imread
  // does; a 1x1 image gives features or a clean reject.
  const std::string rejects = ReadFile(rejects_path);
  const bool tiny_rejected = rejects.find("tiny.png") != std::string::npos;
  const int want_written = tiny_rejected ? 5 : 6;
  EXPECT_NE(r.out.find(std::to_string(want_written) + " written"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::to_string(13 - want_written) + " rejected"), std::string::npos) << r.out;
  const std::vector<std::pair<std::string, std::string>> want{
      {"empty.jpg", "empty file"},
      {"text.jpg", "not an image"},
      {"header_only.jpg", "truncated JPEG"},
      {"cut_jpeg.jpg", "truncated JPEG"},
      {"cut_png.png", "truncated PNG"},
      {"anim.gif", "GIF"},
      {"bomb.png", "30000x30000 = 900000000 pixels, over --max-pixels 178956970"}};
  size_t lines = 0;
  for (size_t at = 0; (at = rejects.find('\n', at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, want.size() + (tiny_rejected ? 1 : 0)) << rejects;
  for (const auto& [name, reason] : want) {
    const size_t line = rejects.find("/" + name);
    ASSERT_NE(line, std::string::npos) << name << "\n" << rejects;
    const std::string text = rejects.substr(line, rejects.find('\n', line) - line);
    EXPECT_NE(text.find(reason), std::string::npos) << text;
  }
  for (const char* name : {"gray.png", "deep16.png", "alpha.png", "cmyk.jpg", "square.png"})
    EXPECT_EQ(rejects.find(name), std::string::npos) << rejects;

  // Decoding the bomb alone would take 2.7 GB; the header check refuses it first.
  const std::string bomb_only = TempDir("bomb_only");
  std::filesystem::copy_file(images + "/bomb.png", bomb_only + "/bomb.png");
  const auto b = ::uniter::testing::Run("/usr/bin/time -f 'maxrss_kb=%M' " + Extract(bomb_only, *dir_ + "/bomb_db", ""));
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_NE(b.out.find("0 written, 0 already there, 1 rejected"), std::string::npos) << b.out;
  const size_t rss_at = b.out.find("maxrss_kb=");
  ASSERT_NE(rss_at, std::string::npos) << b.out;
  EXPECT_LT(std::stol(b.out.substr(rss_at + 10)), 1'500'000) << b.out;
}

TEST_F(ExtractCli, NpzFolderIsWhatConvertImgdirAndPackRead) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  ASSERT_TRUE(make_ok_) << *make_out_;
  const std::string images = SharedDataDir() + "/butd/images";
  const std::string split = *dir_ + "/npz_ref";
  ASSERT_EQ(::uniter::testing::Run(Extract(images, split, "")).exit_code, 0);
  const std::string npz = *dir_ + "/npz/butd";
  // The same --batch as the img_db run: equal batches, so equal bytes on any
  // BLAS (other batch sizes: BatchesAndDevicesDoNotChangeFeatures).
  const auto r = ::uniter::testing::Run(Extract(images, npz, "--format npz"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("5 written"), std::string::npos) << r.out;
  const std::string check = Quote(Python()) + " " + Quote(TestDir() + "/check_outputs.py");
  const auto c = ::uniter::testing::Run(check + " npz " + Quote(split) + " " + Quote(npz) + " 0.2 100 10 2>&1");
  EXPECT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("\"files\": 5"), std::string::npos) << c.out;
  // `uniter featdb pack` of the folder gives the img_db extract writes.
  const auto p = ::uniter::testing::Run(Quote(UniterBinary()) + " featdb pack --quiet " + Quote(npz) + " " +
                                        Quote(*dir_ + "/packed") + " 2>&1");
  ASSERT_EQ(p.exit_code, 0) << p.out;
  const auto same = ::uniter::testing::Run(check + " same-db " + Quote(split) + " " + Quote(*dir_ + "/packed/butd") +
                                           " feat_th0.2_max100_min10 nbb_th0.2_max100_min10.json 2>&1");
  EXPECT_EQ(same.exit_code, 0) << same.out;

  // Resume after a crash: a missing file and a stale temp are redone.
  const std::string victim = npz + "/001150.npz";
  const std::string before = ReadFile(victim);
  std::filesystem::remove(victim);
  ::uniter::testing::WriteFile(npz + "/.001150.npz.tmp", "torn");
  const auto again = ::uniter::testing::Run(Extract(images, npz, "--format npz --resume"));
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("1 written, 4 already there"), std::string::npos) << again.out;
  EXPECT_EQ(ReadFile(victim), before);
  const auto refuse = ::uniter::testing::Run(Extract(images, npz, "--format npz"));
  EXPECT_EQ(refuse.exit_code, 2) << refuse.out;  // a usage error
  EXPECT_NE(refuse.out.find("--resume"), std::string::npos) << refuse.out;
}

TEST_F(ExtractCli, TsvIsWhatLxmertReads) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  ASSERT_TRUE(make_ok_) << *make_out_;
  const std::string images = SharedDataDir() + "/butd/images";
  const std::string split = *dir_ + "/tsv_ref";
  ASSERT_EQ(::uniter::testing::Run(Extract(images, split, "")).exit_code, 0);
  const std::string tsv = *dir_ + "/feats/val.tsv";
  const auto r = ::uniter::testing::Run(Extract(images, tsv, "--format tsv"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string check = Quote(Python()) + " " + Quote(TestDir() + "/check_outputs.py");
  const auto c = ::uniter::testing::Run(check + " tsv " + Quote(tsv) + " " + Quote(split) + " 0.2 100 10 2>&1");
  EXPECT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("\"ids\": [\"000456\", \"000542\", \"001150\", \"001763\", \"004545\"]"), std::string::npos)
      << c.out;  // input order

  // Resume after a crash that tore the last line: it is cut and redone.
  const std::string whole = ReadFile(tsv);
  const size_t last = whole.rfind('\n', whole.size() - 2) + 1;
  ::uniter::testing::WriteFile(tsv, whole.substr(0, last + (whole.size() - last) / 2));
  const auto again = ::uniter::testing::Run(Extract(images, tsv, "--format tsv --resume"));
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("1 written, 4 already there"), std::string::npos) << again.out;
  EXPECT_TRUE(ReadFile(tsv) == whole);
}

TEST_F(ExtractCli, BatchesAndDevicesDoNotChangeFeatures) {
  UNITER_REQUIRE_PYTHON_MODULE("numpy");
  ASSERT_TRUE(make_ok_) << *make_out_;
  // Three 500x375 photos, two portrait copies, a 160x120 copy (the same
  // network input size as the photos) and a 150x100 one (its own).
  const std::string images = TempDir("batch_images");
  for (const char* name : {"000456.jpg", "001150.jpg", "004545.jpg"})
    std::filesystem::copy_file(SharedDataDir() + "/butd/images/" + name, images + "/" + name);
  const cv::Mat photo = cv::imread(SharedDataDir() + "/butd/images/000542.jpg");
  cv::Mat resized;
  cv::resize(photo, resized, cv::Size(375, 500));
  cv::imwrite(images + "/p1.png", resized);
  cv::flip(resized, resized, 1);
  cv::imwrite(images + "/p2.png", resized);
  cv::resize(photo, resized, cv::Size(160, 120));
  cv::imwrite(images + "/s1.png", resized);
  cv::resize(photo, resized, cv::Size(150, 100));
  cv::imwrite(images + "/s2.png", resized);
  auto calls = [](const std::string& out) {
    const size_t at = out.find(" network calls");
    return at == std::string::npos || at == 0 ? -1 : std::stoi(out.substr(out.rfind(' ', at - 1) + 1));
  };
  const auto one = ::uniter::testing::Run(Extract(images, *dir_ + "/b1", "--format npz --batch 1"));
  ASSERT_EQ(one.exit_code, 0) << one.out;
  EXPECT_NE(one.out.find("7 written"), std::string::npos) << one.out;
  EXPECT_EQ(calls(one.out), 7) << one.out;
  const auto four = ::uniter::testing::Run(Extract(images, *dir_ + "/b4", "--format npz --batch 4"));
  ASSERT_EQ(four.exit_code, 0) << four.out;
  // At best 4 landscape, 2 portrait, 1 small; the batcher may flush a
  // partial group early, never batch across sizes.
  EXPECT_GE(calls(four.out), 3) << four.out;
  EXPECT_LT(calls(four.out), 7) << four.out;
  const auto two_dev = ::uniter::testing::Run(
      Extract(images, *dir_ + "/b3d2", "--format npz --batch 3 --device cpu,cpu --threads 2"));
  ASSERT_EQ(two_dev.exit_code, 0) << two_dev.out;
  EXPECT_NE(two_dev.out.find("on 2 device(s)"), std::string::npos) << two_dev.out;
  const std::string check = Quote(Python()) + " " + Quote(TestDir() + "/check_outputs.py");
  for (const char* other : {"/b4", "/b3d2"}) {
    const auto c = ::uniter::testing::Run(check + " same-npz " + Quote(*dir_ + other) + " " + Quote(*dir_ + "/b1") +
                                          " 1e-5 2>&1");
    EXPECT_EQ(c.exit_code, 0) << other << ": " << c.out;
    EXPECT_NE(c.out.find("\"files\": 7"), std::string::npos) << c.out;
  }
}

// Thread counts (TBB decode/encode and LibTorch's intra-op threads alike)
// do not change a byte, with batches: the batcher takes images in input order.
TEST_F(ExtractCli, ThreadCountsDoNotChangeTheOutput) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  ASSERT_TRUE(make_ok_) << *make_out_;
  const std::string images = SharedDataDir() + "/butd/images";
  for (const char* threads : {"1", "3"}) {
    const auto r = ::uniter::testing::Run(
        Extract(images, *dir_ + "/threads" + threads, std::string("--batch 2 --threads ") + threads));
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  const auto c = ::uniter::testing::Run(Quote(Python()) + " " + Quote(TestDir() + "/check_outputs.py") + " same-db " +
                                        Quote(*dir_ + "/threads1") + " " + Quote(*dir_ + "/threads3") +
                                        " feat_th0.2_max100_min10 nbb_th0.2_max100_min10.json 2>&1");
  EXPECT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("\"records\": 5"), std::string::npos) << c.out;
}

TEST_F(ExtractCli, ShardsMergeIntoTheSingleRun) {
  UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
  ASSERT_TRUE(make_ok_) << *make_out_;
  const std::string images = SharedDataDir() + "/butd/images";
  ASSERT_EQ(::uniter::testing::Run(Extract(images, *dir_ + "/single", "")).exit_code, 0);
  const std::string base = *dir_ + "/sharded";
  const auto s0 = ::uniter::testing::Run(Extract(images, base, "--shard 0/2"));
  ASSERT_EQ(s0.exit_code, 0) << s0.out;
  EXPECT_NE(s0.out.find("3 written"), std::string::npos) << s0.out;
  // Shard 1 from the launcher's variables, as under srun / torchrun.
  const auto s1 = ::uniter::testing::Run("SLURM_PROCID=1 SLURM_NTASKS=2 " + Extract(images, base, ""));
  ASSERT_EQ(s1.exit_code, 0) << s1.out;
  EXPECT_NE(s1.out.find("2 written"), std::string::npos) << s1.out;
  EXPECT_NE(s1.out.find("shard 1/2"), std::string::npos) << s1.out;
  const std::string db = "/feat_th0.2_max100_min10";
  const auto m = ::uniter::testing::Run(Quote(UniterBinary()) + " featdb merge --quiet " + Quote(*dir_ + "/merged") +
                                        " " + Quote(base + ".shard0of2" + db) + " " + Quote(base + ".shard1of2" + db) +
                                        " 2>&1");
  ASSERT_EQ(m.exit_code, 0) << m.out;
  EXPECT_NE(m.out.find("5 records merged"), std::string::npos) << m.out;
  const auto c = ::uniter::testing::Run(Quote(Python()) + " " + Quote(TestDir() + "/check_outputs.py") +
                                        " same-db " + Quote(*dir_ + "/single") + " " + Quote(*dir_ + "/merged") +
                                        " feat_th0.2_max100_min10 nbb_th0.2_max100_min10.json 2>&1");
  EXPECT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("\"records\": 5"), std::string::npos) << c.out;
}

TEST_F(ExtractCli, DeviceTheBuildCannotRunIsOneClearLine) {
  ASSERT_TRUE(make_ok_) << *make_out_;
  const auto r = ::uniter::testing::Run("LOCAL_RANK=3 " +
                                        Extract(SharedDataDir() + "/butd/images", *dir_ + "/never_cuda", "--device cuda"));
  EXPECT_EQ(r.exit_code, 2) << r.out;  // a usage error
  if (r.out.find("no such GPU") == std::string::npos) {  // a CUDA build on a machine with < 4 GPUs says that
    EXPECT_NE(r.out.find("--device cuda:3: this build's LibTorch has no CUDA"), std::string::npos) << r.out;
  }
  const auto bad = ::uniter::testing::Run(
      Extract(SharedDataDir() + "/butd/images", *dir_ + "/never_tpu", "--device tpu:0"));
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--device wants cpu, cuda, cuda:N"), std::string::npos) << bad.out;
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
