// `uniter pipeline run` as two processes on 127.0.0.1 (env:// variables set
// by hand, and PyPI torch's real torchrun): extract shards by rank and rank 0
// merges, the ranks train together (grad_reduce sum), rank 0 alone runs the
// rest; the outputs equal one process accumulating two micro-batches (dbs,
// results, metrics, checkpoint bytes: check_pipeline.py same). A failure on
// either rank ends both with one line each.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/demo.h"
#include "tests/test_util.h"

namespace uniter::testing {
namespace {

namespace fs = std::filesystem;

const std::string kChecker = std::string(UNITER_PIPELINE_TEST_DIR) + "/check_pipeline.py";

class PipelineDist : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("pipeline-dist"));
    pipeline::DemoOptions o;
    o.dir = *dir_ + "/in";
    o.train_pairs = 12;
    o.dev_pairs = 4;
    o.image_size = 96;
    o.train_steps = 10;
    config_ = new std::string(pipeline::WriteDemoInputs(o));
    // No dropout anywhere: ranks draw other random numbers than one process.
    nlohmann::json model = nlohmann::json::parse(ReadFile(*dir_ + "/in/uniter-tiny.json"));
    model["hidden_dropout_prob"] = 0.0;
    model["attention_probs_dropout_prob"] = 0.0;
    WriteFile(*dir_ + "/in/no-dropout.json", model.dump(2));
    // The reference: one process, two micro-batches per update.
    one_ = new CommandResult(uniter::testing::Run(Quote(UniterBinary()) + " " + Args(*dir_ + "/one") +
                                 " --train.gradient_accumulation_steps 2 2>&1"));
  }
  static void TearDownTestSuite() {
    delete one_;
    delete config_;
    delete dir_;
  }

  static std::string Args(const std::string& out, const std::string& config = "") {
    return "pipeline run " + Quote(config.empty() ? *config_ : config) + " --output " + Quote(out) + " --model_config " +
           Quote(*dir_ + "/in/no-dropout.json") + " --train.dropout 0 --train.valid_steps 5 --threads 1 --quiet";
  }
  // Both ranks as torchrun would start them, each with its own extra
  // arguments; "0 0" when both exit 0; logs in <logs>.0 and <logs>.1.
  static CommandResult TwoRanks(const std::string& args, const std::string& logs, const std::string& extra0 = "",
                                const std::string& extra1 = "") {
    const int port = ::uniter::testing::FreePorts(3);
    auto rank = [&](int r, const std::string& extra) {
      return "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
             " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
             Quote(UniterBinary()) + " " + args + extra + " > " + Quote(logs + "." + std::to_string(r)) + " 2>&1 & ";
    };
    return uniter::testing::Run(rank(0, extra0) + "p0=$!; " + rank(1, extra1) + "p1=$!; wait $p0; r0=$?; wait $p1; echo $r0 $?");
  }
  static std::string Same(const std::string& out) {
    return uniter::testing::Run(Python() + " " + Quote(kChecker) + " same " + Quote(*dir_ + "/one") + " " + Quote(out)).out;
  }

  static std::string* dir_;
  static std::string* config_;
  static CommandResult* one_;
};
std::string* PipelineDist::dir_ = nullptr;
std::string* PipelineDist::config_ = nullptr;
CommandResult* PipelineDist::one_ = nullptr;

TEST_F(PipelineDist, TwoRanksByHandEqualOneProcess) {
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  UNITER_REQUIRE_PYTHON_MODULE("lz4");
  ASSERT_EQ(one_->exit_code, 0) << one_->out;
  const std::string out = *dir_ + "/two", logs = *dir_ + "/two.log";
  const CommandResult r = TwoRanks(Args(out) + " --train.grad_reduce sum", logs);
  ASSERT_EQ(r.out, "0 0\n") << ReadFile(logs + ".0") << ReadFile(logs + ".1");
  EXPECT_EQ(ReadFile(logs + ".1"), "") << "rank 1 prints nothing";
  EXPECT_NE(ReadFile(logs + ".0").find("pipeline: 7 stages run, 0 up to date"), std::string::npos)
      << ReadFile(logs + ".0");
  EXPECT_EQ(Same(out), "ok\n");
  // Both ranks extracted (their shards merged), and no shard folder is left.
  for (const char* split : {"train", "dev"}) {
    const nlohmann::json m = nlohmann::json::parse(ReadFile(out + "/img_db/nlvr2_" + std::string(split) + "/manifest.json"));
    EXPECT_EQ(m["result"]["ranks"], 2) << split;
    EXPECT_EQ(m["result"]["items"], std::string(split) == "train" ? 24 : 8) << split;
  }
  for (const auto& e : fs::directory_iterator(out + "/img_db"))
    EXPECT_EQ(e.path().filename().string().find(".shard"), std::string::npos) << e.path();
}

TEST_F(PipelineDist, TorchrunEqualsOneProcess) {
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  UNITER_REQUIRE_PYTHON_MODULE("lz4");
  const std::string torchrun = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") +
                               "/.cache/uniter/venv-cuda/bin/torchrun";
  UNITER_REQUIRE_REFERENCE(fs::exists(torchrun)) << torchrun << " (PyPI torch) is missing";
  ASSERT_EQ(one_->exit_code, 0) << one_->out;
  const std::string out = *dir_ + "/torchrun";
  const CommandResult r = uniter::testing::Run(Quote(torchrun) + " --nproc-per-node=2 --master-addr=127.0.0.1 --master-port=" +
                              std::to_string(::uniter::testing::FreePorts(3)) + " --no-python " + Quote(UniterBinary()) + " " + Args(out) +
                              " --train.grad_reduce sum 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(Same(out), "ok\n");
}

// Exactly one line: the error, naming the rank.
void ExpectOneErrorLine(const std::string& log, const std::string& rank, const std::string& what) {
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_TRUE(log.starts_with("uniter: error: " + rank)) << log;
  EXPECT_NE(log.find(what), std::string::npos) << log;
}

TEST_F(PipelineDist, ARankFailingEndsBothWithOneLine) {
  // Rank 0 fails (a serial stage: convert); rank 1, waiting for its plan, ends too.
  std::string logs = *dir_ + "/fail0.log";
  CommandResult r = TwoRanks(Args(*dir_ + "/fail0") + " --annotations.dev /nonexistent/dev.json", logs);
  EXPECT_EQ(r.out, "1 1\n");
  ExpectOneErrorLine(ReadFile(logs + ".0"), "rank 0 of 2: ", "/nonexistent/dev.json");
  ExpectOneErrorLine(ReadFile(logs + ".1"), "rank 1 of 2: ", "rank 0 stopped: ");
  // Rank 1 fails (its extract shard: a detector that is no caffemodel); rank 0, merging, ends too.
  const std::string bad = *dir_ + "/bad.caffemodel";
  WriteFile(bad, "not a model");
  logs = *dir_ + "/fail1.log";
  r = TwoRanks(Args(*dir_ + "/fail1"), logs, "", " --detector_weights " + Quote(bad));
  EXPECT_EQ(r.out, "1 1\n");
  ExpectOneErrorLine(ReadFile(logs + ".1"), "rank 1 of 2: ", bad);
  ExpectOneErrorLine(ReadFile(logs + ".0"), "rank 0 of 2: ", "rank 1 failed: ");
  EXPECT_FALSE(fs::exists(*dir_ + "/fail1/img_db/nlvr2_train/manifest.json"));
  EXPECT_FALSE(fs::exists(*dir_ + "/fail1/train"));
}

// BUTD .npz folders under two ranks: rank 0 alone packs them (a serial
// stage), rank 1 waits for the train plan; the outputs equal the one-process
// run that extracted the same features (npz written by numpy from its db).
TEST_F(PipelineDist, TwoRanksPackingNpzEqualOneProcess) {
  UNITER_REQUIRE_PYTHON_MODULE("numpy");
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  UNITER_REQUIRE_PYTHON_MODULE("lz4");
  ASSERT_EQ(one_->exit_code, 0) << one_->out;
  std::string npz_args;
  for (const char* split : {"train", "dev"}) {
    const std::string db = *dir_ + "/one/img_db/nlvr2_" + split + "/feat_th0.2_max10_min10";
    const std::string npz = *dir_ + "/npz/" + split;
    ASSERT_EQ(uniter::testing::Run(Python() + " " + Quote(kChecker) + " to-npz " + Quote(db) + " " + Quote(npz)).out, "ok\n");
    npz_args += std::string(" --npz.") + split + " " + Quote(npz);
  }
  nlohmann::json config = nlohmann::json::parse(ReadFile(*config_));
  config.erase("images");
  const std::string npz_config = *dir_ + "/in/pipeline-npz.json";
  WriteFile(npz_config, config.dump());
  const std::string out = *dir_ + "/pack2", logs = *dir_ + "/pack2.log";
  const CommandResult r = TwoRanks(Args(out, npz_config) + npz_args + " --train.grad_reduce sum", logs);
  ASSERT_EQ(r.out, "0 0\n") << ReadFile(logs + ".0") << ReadFile(logs + ".1");
  EXPECT_EQ(ReadFile(logs + ".1"), "") << "rank 1 prints nothing";
  EXPECT_NE(ReadFile(logs + ".0").find("pipeline: 7 stages run, 0 up to date"), std::string::npos)
      << ReadFile(logs + ".0");
  for (const char* split : {"train", "dev"}) {
    const nlohmann::json m = nlohmann::json::parse(ReadFile(out + "/img_db/nlvr2_" + std::string(split) + "/manifest.json"));
    EXPECT_EQ(m["stage"], std::string("pack-") + split);
    EXPECT_EQ(m["result"]["items"], std::string(split) == "train" ? 24 : 8) << split;
  }
  EXPECT_EQ(Same(out), "ok\n");
}

// kill -9 under two ranks, then rerun with two: first both ranks mid-train,
// then rank 0 alone (rank 1 must end by itself, promptly, not hang in its
// collective); the rerun's final outputs equal an uninterrupted two-rank run.
TEST_F(PipelineDist, KilledRanksThenRerunEqualsUninterrupted) {
  UNITER_REQUIRE_PYTHON_MODULE("lmdb");
  UNITER_REQUIRE_PYTHON_MODULE("lz4");
  // Longer training (a checkpoint every 5 of 40 steps) leaves time to kill between checkpoints.
  auto args = [&](const std::string& out) {
    return Args(out) + " --train.grad_reduce sum --train.num_train_steps 40";
  };
  const std::string ref = *dir_ + "/kill-ref", out = *dir_ + "/kill", logs = *dir_ + "/kill.log";
  ASSERT_EQ(TwoRanks(args(ref), *dir_ + "/kill-ref.log").out, "0 0\n") << ReadFile(*dir_ + "/kill-ref.log.0");
  // Starts both ranks on `out`; once `marker` exists kill -9s rank 0 (and rank
  // 1 with `both`); prints rank 0's and rank 1's exit codes and whether rank 1
  // had ended within 30 s of the kill (it
  // takes ~1 s: the closed connections end its waits; c10d's timeout is 30 min).
  auto kill_when = [&](const std::string& marker, bool both) {
    const int port = ::uniter::testing::FreePorts(3);
    auto rank = [&](int r) {
      return "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
             " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + Quote(UniterBinary()) +
             " " + args(out) + " > " + Quote(logs + "." + std::to_string(r)) + " 2>&1 & ";
    };
    const std::string wait_marker = "for i in $(seq 1 1200); do ls " + marker + " >/dev/null 2>&1 && break; sleep 0.05; done; ";
    const std::string kill1 = both ? "kill -9 $p1; " : "";
    const std::string wait1 = "for i in $(seq 1 300); do kill -0 $p1 2>/dev/null || break; sleep 0.1; done; "
                              "kill -0 $p1 2>/dev/null && { t=hung; kill -9 $p1; } || t=ended;";
    return uniter::testing::Run(rank(0) + "p0=$!; " + rank(1) + "p1=$!; " + wait_marker + "kill -9 $p0; " + kill1 +
                                wait1 + "wait $p0; r0=$?; wait $p1; echo $r0 $? $t").out;
  };
  EXPECT_EQ(kill_when(out + "/train/run/ckpt/model_step_10.pt", true), "137 137 ended\n");
  EXPECT_FALSE(fs::exists(out + "/train/manifest.json"));
  const std::string second = kill_when(out + "/train/run/ckpt/model_step_25.pt", false);
  EXPECT_TRUE(second.starts_with("137 ") && second.ends_with(" ended\n") && !second.starts_with("137 0 "))
      << second << ReadFile(logs + ".1");
  const std::string log1 = ReadFile(logs + ".1");
  std::printf("rank 1 after rank 0's kill: %s", log1.c_str());
  ExpectOneErrorLine(log1, "rank 1 of 2: ", "");
  EXPECT_EQ(log1.find("rank 1 of 2: rank 1 of 2"), std::string::npos) << "the rank named once";
  EXPECT_FALSE(fs::exists(out + "/train/manifest.json"));
  const CommandResult r = TwoRanks(args(out), logs);
  ASSERT_EQ(r.out, "0 0\n") << ReadFile(logs + ".0") << ReadFile(logs + ".1");
  // Train resumed (not restarted) each time: three events files.
  int events = 0;
  for (const auto& e : fs::directory_iterator(out + "/train/run/log"))
    events += e.path().filename().string().starts_with("events.out.tfevents.");
  EXPECT_EQ(events, 3);
  // Only the last training state is left (none a kill orphaned).
  std::vector<std::string> states;
  for (const auto& e : fs::directory_iterator(out + "/train/run/train_state")) states.push_back(e.path().filename());
  std::sort(states.begin(), states.end());
  EXPECT_EQ(states, (std::vector<std::string>{"state_step_40.json", "state_step_40.pt"}));
  EXPECT_EQ(uniter::testing::Run(Python() + " " + Quote(kChecker) + " same " + Quote(ref) + " " + Quote(out)).out, "ok\n");
}

}  // namespace
}  // namespace uniter::testing
