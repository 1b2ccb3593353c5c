// `uniter pipeline run` end to end on generated inputs (pipeline/demo.h):
// kill -9 in the middle and rerun gives the uninterrupted run's outputs,
// a rerun of a finished run skips every stage, the report shows the run's
// numbers (checked in headless Chromium's DOM by Python), bad inputs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>

#include "pipeline/demo.h"
#include "tests/test_util.h"

namespace uniter::testing {
namespace {

namespace fs = std::filesystem;

const std::string kChecker = std::string(UNITER_PIPELINE_TEST_DIR) + "/check_pipeline.py";

class PipelineCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("pipeline"));
    pipeline::DemoOptions o;
    o.dir = *dir_ + "/in";
    o.train_pairs = 30;
    o.dev_pairs = 10;
    o.image_size = 96;
    o.train_steps = 40;
    config_ = new std::string(pipeline::WriteDemoInputs(o));
    // The uninterrupted run every test compares with.
    first_ = new CommandResult(uniter::testing::Run(Command(*dir_ + "/a")));
  }
  static void TearDownTestSuite() {
    delete first_;
    delete config_;
    delete dir_;
  }

  static std::string Command(const std::string& out) {
    return Quote(UniterBinary()) + " pipeline run " + Quote(*config_) + " --output " + Quote(out) +
           " --train.valid_steps 20 --quiet";
  }

  // Starts the run on `out`, kill -9s it once `marker` exists (within 120 s).
  static void KillWhen(const std::string& out, const std::string& marker) {
    const std::string script = Command(out) + " >/dev/null 2>&1 & p=$!; for i in $(seq 1 1200); do ls " + marker +
                               " >/dev/null 2>&1 && break; sleep 0.1; done; kill -9 $p; wait $p; echo $?";
    const CommandResult r = uniter::testing::Run(script);
    ASSERT_EQ(r.out, "137\n") << "the run was not killed (it ended first?)";
  }

  static std::string* dir_;
  static std::string* config_;
  static CommandResult* first_;
};
std::string* PipelineCli::dir_ = nullptr;
std::string* PipelineCli::config_ = nullptr;
CommandResult* PipelineCli::first_ = nullptr;

TEST_F(PipelineCli, RunsEveryStageAndScoresDev) {
  ASSERT_EQ(first_->exit_code, 0) << first_->out;
  EXPECT_NE(first_->out.find("pipeline: 7 stages run, 0 up to date"), std::string::npos) << first_->out;
  for (const char* f : {"txt_db/nlvr2_train.db/manifest.json", "img_db/nlvr2_dev/manifest.json",
                        "train/manifest.json", "infer/results.csv", "eval/metrics.json", "report.html"})
    EXPECT_TRUE(fs::exists(*dir_ + "/a/" + f)) << f;
  // A second run finds every manifest matching and redoes nothing.
  const CommandResult again = uniter::testing::Run(Command(*dir_ + "/a"));
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("pipeline: 0 stages run, 7 up to date"), std::string::npos) << again.out;
}

TEST_F(PipelineCli, KilledTwiceThenRerunEqualsUninterrupted) {
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  UNITER_REQUIRE_PYTHON_MODULE("msgpack");
  UNITER_REQUIRE_PYTHON_MODULE("lz4");
  ASSERT_EQ(first_->exit_code, 0) << first_->out;
  const std::string b = *dir_ + "/b";
  // Mid-extraction (the feature db exists, its manifest does not yet) ...
  KillWhen(b, b + "/img_db/nlvr2_train/feat_*");
  EXPECT_FALSE(fs::exists(b + "/train"));
  // ... then mid-training (a checkpoint's training state exists).
  KillWhen(b, b + "/train/run/train_state/*.json");
  EXPECT_FALSE(fs::exists(b + "/train/manifest.json"));
  EXPECT_TRUE(fs::exists(b + "/train/manifest.pending.json"));
  const CommandResult last = uniter::testing::Run(Command(b));
  ASSERT_EQ(last.exit_code, 0);
  // Train resumed (not restarted): both events files are there.
  int events = 0;
  for (const auto& e : fs::directory_iterator(b + "/train/run/log"))
    events += e.path().filename().string().starts_with("events.out.tfevents.");
  EXPECT_EQ(events, 2);
  const CommandResult same = uniter::testing::Run(Python() + " " + Quote(kChecker) + " same " + Quote(*dir_ + "/a") + " " + Quote(b));
  EXPECT_EQ(same.out, "ok\n");
  EXPECT_EQ(same.exit_code, 0);
  // The resumed run's report reads both events files, the second one winning
  // the steps it logged again.
  if (uniter::testing::Run("command -v chromium").exit_code == 0 && PythonHas("tensorboard")) {
    const CommandResult dom = uniter::testing::Run(
        "chromium --headless --no-sandbox --disable-gpu --dump-dom file://" + Quote(b + "/report.html") + " 2>/dev/null");
    WriteFile(*dir_ + "/dom-b.html", dom.out);
    EXPECT_EQ(uniter::testing::Run(Python() + " " + Quote(kChecker) + " report " + Quote(*dir_ + "/dom-b.html") + " " +
                                   Quote(b)).out, "ok\n");
  }
}

TEST_F(PipelineCli, ReportInChromiumShowsTheRunsNumbers) {
  UNITER_REQUIRE_PYTHON_MODULE("tensorboard");
  UNITER_REQUIRE_REFERENCE(uniter::testing::Run("command -v chromium").exit_code == 0) << "chromium (Debian package) is missing";
  ASSERT_EQ(first_->exit_code, 0) << first_->out;
  const std::string report = *dir_ + "/a/report.html";
  const std::string chromium = "chromium --headless --no-sandbox --disable-gpu --allow-file-access-from-files ";
  const CommandResult dom = uniter::testing::Run(chromium + "--dump-dom file://" + Quote(report) + " 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0);
  WriteFile(*dir_ + "/dom.html", dom.out);
  const CommandResult check =
      uniter::testing::Run(Python() + " " + Quote(kChecker) + " report " + Quote(*dir_ + "/dom.html") + " " + Quote(*dir_ + "/a"));
  EXPECT_EQ(check.out, "ok\n");
  // The screenshot, kept in the build tree for a person to look at.
  const std::string png = std::string(UNITER_PIPELINE_TEST_OUT) + "/report.png";
  fs::remove(png);
  ASSERT_EQ(uniter::testing::Run(chromium + "--window-size=1280,2200 --screenshot=" + Quote(png) + " file://" + Quote(report) +
                " >/dev/null 2>&1").exit_code, 0);
  EXPECT_GT(fs::file_size(png), 10000u);
}

// BUTD .npz folders instead of images: the pack stage makes the img_db the
// extract stage made from the same features (npz written by numpy from run A's db).
TEST_F(PipelineCli, NpzFoldersPackToTheSameImgDb) {
  UNITER_REQUIRE_PYTHON_MODULE("numpy");
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  ASSERT_EQ(first_->exit_code, 0) << first_->out;
  const std::string py = Python() + " " + Quote(kChecker);
  std::string args;
  for (const char* split : {"train", "dev"}) {
    const std::string db = *dir_ + "/a/img_db/nlvr2_" + split + "/feat_th0.2_max10_min10";
    const std::string npz = *dir_ + "/npz/" + split;
    ASSERT_EQ(uniter::testing::Run(py + " to-npz " + Quote(db) + " " + Quote(npz)).out, "ok\n");
    args += std::string(" --npz.") + split + " " + Quote(npz);
  }
  // A config key cannot be removed on the command line: write the npz variant.
  nlohmann::json config = nlohmann::json::parse(ReadFile(*config_));
  config.erase("images");
  const std::string npz_config = *dir_ + "/in/pipeline-npz.json";
  WriteFile(npz_config, config.dump());
  const std::string d = *dir_ + "/d";
  const CommandResult r = uniter::testing::Run(Quote(UniterBinary()) + " pipeline run " + Quote(npz_config) +
                                               " --output " + Quote(d) + args + " --until pack");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("pipeline: 4 stages run"), std::string::npos) << r.out;
  for (const char* split : {"train", "dev"}) {
    const std::string db = std::string("/img_db/nlvr2_") + split + "/feat_th0.2_max10_min10";
    EXPECT_EQ(uniter::testing::Run(py + " same-img " + Quote(*dir_ + "/a" + db) + " " + Quote(d + db)).out, "ok\n");
  }
  EXPECT_TRUE(fs::exists(d + "/img_db/nlvr2_dev/manifest.json"));
  EXPECT_FALSE(fs::exists(d + "/train"));
}

TEST_F(PipelineCli, BadInputs) {
  // An unknown key names the valid ones.
  CommandResult r = uniter::testing::Run(Command(*dir_ + "/c") + " --epochs 3 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("unknown key 'epochs'; valid keys: annotations,"), std::string::npos) << r.out;
  // A missing annotation file: one line naming it.
  r = uniter::testing::Run(Command(*dir_ + "/c") + " --annotations.dev /nonexistent/dev.json 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("/nonexistent/dev.json"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  // A malformed annotation line is the convert stage's reject; the rest converts.
  const std::string ann = *dir_ + "/bad_dev.json";
  WriteFile(ann, ReadFile(*dir_ + "/in/nlvr2/dev.json") + "{\"identifier\": \"dev-x\"\n");
  r = uniter::testing::Run(Command(*dir_ + "/c") + " --annotations.dev " + Quote(ann) + " --until convert 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string manifest = ReadFile(*dir_ + "/c/txt_db/nlvr2_dev.db/manifest.json");
  EXPECT_NE(manifest.find("\"rejects\": 1"), std::string::npos) << manifest;
  EXPECT_NE(manifest.find("\"items\": 60"), std::string::npos) << manifest;
}

// VQA- and VE-shaped runs end to end (pipeline demo --task): the features
// land under the keys the converted txt_db names, and eval/metrics.json is the
// dev accuracy recomputed in Python from the run's results file and the dev
// annotations (VQA: vqaEval's algorithm restated), also what `uniter eval`
// prints for that file; the report shows those numbers.
class PipelineTask : public ::testing::TestWithParam<std::string> {};

TEST_P(PipelineTask, RunsEndToEndAndScoresAsThePythonReference) {
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  UNITER_REQUIRE_PYTHON_MODULE("msgpack");
  UNITER_REQUIRE_PYTHON_MODULE("lz4");
  const std::string task = GetParam();
  const std::string dir = TempDir("pipeline-" + task);
  pipeline::DemoOptions o;
  o.task = task;
  o.dir = dir + "/in";
  o.train_pairs = 30;  // 60 images, 180 examples
  o.dev_pairs = 10;
  o.image_size = 96;
  o.train_steps = 200;
  const std::string config = pipeline::WriteDemoInputs(o);
  const std::string out = dir + "/out";
  const CommandResult r = uniter::testing::Run(Quote(UniterBinary()) + " pipeline run " + Quote(config) + " --output " +
                                               Quote(out) + " --train.valid_steps 100 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("pipeline: 7 stages run, 0 up to date"), std::string::npos) << r.out;

  const std::string py = Python() + " " + Quote(kChecker);
  EXPECT_EQ(uniter::testing::Run(py + " keys " + Quote(out)).out, "ok\n");
  const nlohmann::json pj = nlohmann::json::parse(ReadFile(config));
  const std::string dev_ann = pj["annotations"]["dev"].get<std::string>();
  const std::string ann = (fs::path(config).parent_path() / dev_ann).string();
  EXPECT_EQ(uniter::testing::Run(py + " metrics " + task + " " + Quote(out) + " " + Quote(ann)).out, "ok\n");

  // The trainer's own evaluation of the same results file prints the same numbers.
  const nlohmann::json metrics = nlohmann::json::parse(ReadFile(out + "/eval/metrics.json"));
  const nlohmann::json infer = nlohmann::json::parse(ReadFile(out + "/infer/manifest.json"));
  const CommandResult e = uniter::testing::Run(Quote(UniterBinary()) + " eval " + task + " " +
                                               Quote(infer["result"]["results"].get<std::string>()) + " " + Quote(ann));
  ASSERT_EQ(e.exit_code, 0) << e.out;
  ASSERT_TRUE(e.out.starts_with("accuracy=")) << e.out;
  EXPECT_EQ(std::stod(e.out.substr(9)), metrics["accuracy"].get<double>()) << e.out;
  // The tiny model learned from the images (chance: VE 1/3; VQA's best text-only guess < 0.45).
  EXPECT_GT(metrics["accuracy"].get<double>(), 0.5);

  if (uniter::testing::Run("command -v chromium").exit_code == 0 && PythonHas("tensorboard")) {
    const CommandResult dom = uniter::testing::Run("chromium --headless --no-sandbox --disable-gpu --dump-dom file://" +
                                                   Quote(out + "/report.html") + " 2>/dev/null");
    WriteFile(dir + "/dom.html", dom.out);
    EXPECT_EQ(uniter::testing::Run(py + " report " + Quote(dir + "/dom.html") + " " + Quote(out)).out, "ok\n");
  }
}

INSTANTIATE_TEST_SUITE_P(VqaAndVe, PipelineTask, ::testing::Values("vqa", "ve"),
                         [](const auto& info) { return info.param; });

// Image-text retrieval from a Karpathy-style dataset_flickr30k.json and BUTD
// npz folders (check_pipeline.py itm-inputs: the captions' colour and shape
// words set their image's features): the txt_dbs read as UNITER's data/itm.py
// reads them hold the Karpathy train/val captions, every image they name is
// a key of the packed img_db, training saved checkpoints, and the R@K the run
// printed and wrote equal utils/itm_eval.py restated on its results.bin.
TEST(PipelineItm, RunsEndToEndAndScoresAsItmEval) {
  UNITER_REQUIRE_PYTHON_MODULE("numpy");
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  UNITER_REQUIRE_PYTHON_MODULE("msgpack");
  UNITER_REQUIRE_PYTHON_MODULE("lz4");
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  UNITER_REQUIRE_PYTHON_MODULE("pytorch_pretrained_bert");
  const std::string dir = TempDir("pipeline-itm");
  const std::string py = Python() + " " + Quote(kChecker);
  ASSERT_EQ(uniter::testing::Run(py + " itm-inputs " + Quote(dir + "/in")).out, "ok\n");
  const std::string config = dir + "/in/pipeline.json";
  const std::string out = dir + "/out";
  const CommandResult r =
      uniter::testing::Run(Quote(UniterBinary()) + " pipeline run " + Quote(config) + " --output " + Quote(out) + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("pipeline: 7 stages run, 0 up to date"), std::string::npos) << r.out;
  for (const char* f : {"txt_db/itm_train.db/manifest.json", "txt_db/itm_dev.db/manifest.json",
                        "img_db/itm_train/manifest.json", "img_db/itm_dev/manifest.json",
                        "train/run/ckpt/model_step_300.pt", "infer/scores.json", "infer/results.bin", "report.html"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  EXPECT_EQ(uniter::testing::Run(py + " itm-txt " + Quote(out) + " " + Quote(dir + "/in/dataset_flickr30k.json")).out, "ok\n");
  EXPECT_EQ(uniter::testing::Run(py + " keys " + Quote(out)).out, "ok\n");
  EXPECT_EQ(uniter::testing::Run(py + " itm-metrics " + Quote(out)).out, "ok\n");
  // The printed line carries metrics.json's numbers under UNITER's names.
  const nlohmann::json metrics = nlohmann::json::parse(ReadFile(out + "/eval/metrics.json"));
  for (const char* k : {"txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean"}) {
    const size_t at = r.out.find(std::string(" ") + k + "=");
    ASSERT_NE(at, std::string::npos) << k << " not printed: " << r.out;
    EXPECT_NEAR(std::stod(r.out.substr(at + std::strlen(k) + 2)), metrics.at(k).get<double>(), 5e-5) << k;
  }
  // The tiny model matched words to features (chance: 1/10 images per
  // caption, 2/20 captions per image; 300 steps reach 0.55 and 0.4).
  EXPECT_GE(metrics.at("img_r1").get<double>(), 0.25);
  EXPECT_GE(metrics.at("txt_r1").get<double>(), 0.25);
  if (uniter::testing::Run("command -v chromium").exit_code == 0 && PythonHas("tensorboard")) {
    const CommandResult dom = uniter::testing::Run("chromium --headless --no-sandbox --disable-gpu --dump-dom file://" +
                                                   Quote(out + "/report.html") + " 2>/dev/null");
    WriteFile(dir + "/dom.html", dom.out);
    EXPECT_EQ(uniter::testing::Run(py + " report " + Quote(dir + "/dom.html") + " " + Quote(out)).out, "ok\n");
  }
  // A rerun finds every stage up to date.
  const CommandResult again =
      uniter::testing::Run(Quote(UniterBinary()) + " pipeline run " + Quote(config) + " --output " + Quote(out) + " --quiet");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("pipeline: 0 stages run, 7 up to date"), std::string::npos) << again.out;

  // An image of the dev split without features: one line naming the Karpathy
  // file and the image, before any training.
  const std::string npz = dir + "/npz-missing";
  fs::copy(dir + "/in/npz/val", npz);
  fs::remove(npz + "/flickr30k_000000001104.npz");
  const std::string bad = dir + "/bad";
  const CommandResult b = uniter::testing::Run(Quote(UniterBinary()) + " pipeline run " + Quote(config) + " --output " +
                                               Quote(bad) + " --npz.dev " + Quote(npz) + " --quiet 2>&1");
  EXPECT_NE(b.exit_code, 0);
  EXPECT_EQ(std::count(b.out.begin(), b.out.end(), '\n'), 1) << b.out;
  EXPECT_NE(b.out.find(dir + "/in/dataset_flickr30k.json"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("image flickr30k_000000001104.npz"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("has no features in " + npz), std::string::npos) << b.out;
  EXPECT_FALSE(fs::exists(bad + "/train/run/ckpt")) << "training started";
}

}  // namespace
}  // namespace uniter::testing
