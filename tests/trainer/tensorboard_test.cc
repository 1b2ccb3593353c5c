// Event files against PyPI tensorboard's own readers: the record reader that
// checks both masked CRC-32Cs, and the EventAccumulator TensorBoard's UI uses.
#include "trainer/tensorboard.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <algorithm>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Python;
using ::uniter::testing::Quote;

nlohmann::json ReadWithTensorboard(const std::string& path) {
  const auto r = ::uniter::testing::Run(Quote(Python()) + " " +
                                        Quote(std::string(UNITER_TRAINER_TEST_DIR) + "/read_events.py") + " " +
                                        Quote(path));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out);
}

TEST(EventWriter, TensorboardReadsEveryScalarWithItsTagStepAndValue) {
  UNITER_REQUIRE_PYTHON_MODULE("tensorboard");
  const std::string dir = ::uniter::testing::TempDir("tb_scalars") + "/log";
  struct Point {
    std::string tag;
    int64_t step;
    double value;
  };
  std::vector<Point> logged;
  std::string path;
  {
    EventWriter writer(dir);
    path = writer.path();
    // Enough records to cross the 64 KiB flush threshold more than once.
    for (int64_t step = 1; step <= 3000; ++step) {
      logged.push_back({"loss", step, 1.0 / static_cast<double>(step)});
      logged.push_back({"lr", step, 3e-5 * static_cast<double>(step % 800) / 800.0});
      if (step % 500 == 0) logged.push_back({"valid/acc", step, 0.5 + 1e-4 * static_cast<double>(step)});
    }
    logged.push_back({"perf/ex_per_s", 3000, 1e30});
    for (const auto& p : logged) writer.AddScalar(p.tag, p.value, p.step);
  }
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir));
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u) << path;

  const auto got = ReadWithTensorboard(path);
  EXPECT_TRUE(got["error"].is_null()) << got["error"];
  EXPECT_EQ(got["file_version"], "brain.Event:2");
  EXPECT_EQ(got["records"].get<size_t>(), logged.size() + 1);  // + the file_version record
  // EventAccumulator groups by tag (sorted), in step order within a tag.
  std::vector<Point> want = logged;
  std::stable_sort(want.begin(), want.end(), [](const Point& a, const Point& b) { return a.tag < b.tag; });
  ASSERT_EQ(got["scalars"].size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& s = got["scalars"][i];
    ASSERT_EQ(s[0], want[i].tag) << i;
    EXPECT_EQ(s[1].get<int64_t>(), want[i].step) << i;
    // simple_value is a float32, as tensorboardX stores it.
    EXPECT_EQ(s[2].get<double>(), static_cast<double>(static_cast<float>(want[i].value))) << want[i].tag;
    EXPECT_GT(s[3].get<double>(), 1.7e9);  // wall time in seconds since the epoch
  }
}

TEST(EventWriter, NonFiniteValuesAreKept) {
  UNITER_REQUIRE_PYTHON_MODULE("tensorboard");
  const std::string dir = ::uniter::testing::TempDir("tb_nonfinite");
  std::string path;
  {
    EventWriter writer(dir);
    path = writer.path();
    writer.AddScalar("loss", std::numeric_limits<double>::quiet_NaN(), 1);
    writer.AddScalar("loss", std::numeric_limits<double>::infinity(), 2);
  }
  const auto got = ReadWithTensorboard(path);
  ASSERT_EQ(got["scalars"].size(), 2u);
  EXPECT_EQ(got["scalars"][0][2], "nan");
  EXPECT_EQ(got["scalars"][1][2], "inf");
}

TEST(EventWriter, AFlippedByteFailsTensorboardsChecksum) {
  UNITER_REQUIRE_PYTHON_MODULE("tensorboard");
  const std::string dir = ::uniter::testing::TempDir("tb_crc");
  std::string path;
  {
    EventWriter writer(dir);
    path = writer.path();
    for (int step = 0; step < 10; ++step) writer.AddScalar("loss", step, step);
  }
  const std::string good = ::uniter::testing::ReadFile(path);
  ASSERT_EQ(ReadWithTensorboard(path)["records"], 11);
  // One flipped bit in the last record's payload, then in its length.
  for (const size_t from_end : {size_t{10}, size_t{30}}) {
    std::string bad = good;
    bad[bad.size() - from_end] ^= 0x01;
    ::uniter::testing::WriteFile(path, bad);
    const auto got = ReadWithTensorboard(path);
    EXPECT_EQ(got["error"], "DataLossError") << from_end;
    EXPECT_EQ(got["records"], 10) << from_end;  // every record before it intact
  }
}

TEST(EventWriter, TwoWritersInOneFolderNeverShareAFile) {
  const std::string dir = ::uniter::testing::TempDir("tb_two");
  EventWriter a(dir);
  EventWriter b(dir);
  EXPECT_NE(a.path(), b.path());
}

TEST(EventWriter, UnwritableFolderIsAClearError) {
  const std::string file = ::uniter::testing::TempDir("tb_bad") + "/not_a_dir";
  ::uniter::testing::WriteFile(file, "x");
  try {
    EventWriter writer(file + "/log");
    FAIL() << "expected an IoError";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace uniter::trainer
