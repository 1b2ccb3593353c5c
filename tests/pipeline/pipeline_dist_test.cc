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
#include <cstdlib>
#include <filesystem>
#include <string>

#include "pipeline/demo.h"
#include "tests/test_util.h"

namespace uniter::testing {
namespace {

namespace fs = std::filesystem;

const std::string kChecker = std::string(UNITER_PIPELINE_TEST_DIR) + "/check_pipeline.py";

// A port on 127.0.0.1 with the next two free as well: torchrun's agent holds
// the first, the trainer's store the next, the pipeline's store the third.
int FreePorts() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    bool free = port < 65533;
    for (int k = 1; k <= 2 && free; ++k) {
      int fd2 = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in b = a;
      b.sin_port = htons(static_cast<uint16_t>(port + k));
      free = bind(fd2, reinterpret_cast<sockaddr*>(&b), sizeof(b)) == 0;
      close(fd2);
    }
    close(fd);
    if (free) return port;
  }
  return 29533;
}

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

  static std::string Args(const std::string& out) {
    return "pipeline run " + Quote(*config_) + " --output " + Quote(out) + " --model_config " +
           Quote(*dir_ + "/in/no-dropout.json") + " --train.dropout 0 --train.valid_steps 5 --threads 1 --quiet";
  }
  // Both ranks as torchrun would start them, each with its own extra
  // arguments; "0 0" when both exit 0; logs in <logs>.0 and <logs>.1.
  static CommandResult TwoRanks(const std::string& args, const std::string& logs, const std::string& extra0 = "",
                                const std::string& extra1 = "") {
    const int port = FreePorts();
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
                              std::to_string(FreePorts()) + " --no-python " + Quote(UniterBinary()) + " " + Args(out) +
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

}  // namespace
}  // namespace uniter::testing
