// issue #10 §5: `uniter train` as several processes over a c10d group (Gloo
// on 127.0.0.1). Two ranks with --grad_reduce sum take the micro-batches one
// process takes with gradient_accumulation_steps 2, so they must end with its
// weights (read by Python torch from ckpt/model_step_N.pt) and its
// validation results; only rank 0 writes files or prints. Launched by hand
// (the env:// variables set here) and by PyPI torch's real torchrun; a run
// killed with SIGKILL resumes under 2 ranks to the uninterrupted result.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>

#include "tests/test_util.h"
#include "tests/trainer/train_test_data.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;

constexpr int kSteps = 10;

// Every file under `dir`, relative, TensorBoard's (host- and time-named) as "events".
std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), dir).string();
    out.insert(rel.find("events.out.tfevents.") != std::string::npos ? "log/events" : rel);
  }
  return out;
}

class DistTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::uniter::testing::TempDir("dist_train"));
    std::mt19937 gen(2468);
    testing::WriteImgDb(*root_ + "/img", gen);
    testing::WriteTxtDb(*root_ + "/txt_train", "train", 2000, gen);
    testing::WriteTxtDb(*root_ + "/txt_dev", "dev", 120, gen);
    // No dropout anywhere (--dropout reaches nn.Dropout only, not paired-attn's
    // MultiheadAttention): ranks draw other random numbers than one process.
    ::uniter::testing::WriteFile(*root_ + "/model.json",
                                 nlohmann::json{{"vocab_size", 128}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                                                {"num_attention_heads", 4}, {"intermediate_size", 128},
                                                {"hidden_act", "gelu"}, {"hidden_dropout_prob", 0.0},
                                                {"attention_probs_dropout_prob", 0.0},
                                                {"max_position_embeddings", 64}, {"type_vocab_size", 2},
                                                {"initializer_range", 0.02}}
                                     .dump(2));
    const nlohmann::json config = {
        {"train_txt_db", *root_ + "/txt_train"}, {"train_img_db", *root_ + "/img"},
        {"val_txt_db", *root_ + "/txt_dev"},     {"val_img_db", *root_ + "/img"},
        {"model_config", *root_ + "/model.json"}, {"output_dir", *root_ + "/unused"},
        {"model", "paired-attn"},                {"train_batch_size", 600},
        {"val_batch_size", 2000},                {"learning_rate", 3e-3},
        {"valid_steps", 5},                      {"num_train_steps", kSteps},
        {"dropout", 0.0},                        {"grad_norm", 2.0},
        {"warmup_steps", 3},                     {"seed", 77},
        {"n_workers", 1},                        {"grad_reduce", "sum"}};
    ::uniter::testing::WriteFile(*root_ + "/config.json", config.dump(4));
    // The reference: one process, two micro-batches per update.
    one_ = new std::string(*root_ + "/one");
    const auto r = Uniter(Train(*one_) + " --gradient_accumulation_steps 2 > " + Quote(*root_ + "/one.log") + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << ::uniter::testing::ReadFile(*root_ + "/one.log");
  }
  static void TearDownTestSuite() {
    delete root_;
    delete one_;
    root_ = one_ = nullptr;
  }

  static std::string Train(const std::string& out) {
    return "train nlvr2 --config " + Quote(*root_ + "/config.json") + " --output_dir " + Quote(out) +
           " --threads 1 --dist-timeout 120";
  }
  static ::uniter::testing::CommandResult Uniter(const std::string& args) {
    return ::uniter::testing::Run(Quote(::uniter::testing::UniterBinary()) + " " + args);
  }
  // Rank `rank` of 2 as torchrun would start it, output to `log`, in the background.
  static std::string Rank(int rank, int port, const std::string& args, const std::string& log) {
    return "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
           " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
           Quote(::uniter::testing::UniterBinary()) + " " + args + " > " + Quote(log) + " 2>&1 & ";
  }
  // Both ranks; "0 0" when both exit 0.
  static ::uniter::testing::CommandResult TwoRanks(const std::string& args, const std::string& logs) {
    const int port = ::uniter::testing::FreePorts(2);
    return ::uniter::testing::Run(Rank(0, port, args, logs + ".0") + "p0=$!; " + Rank(1, port, args, logs + ".1") +
                                  "p1=$!; wait $p0; r0=$?; wait $p1; echo $r0 $?");
  }

  // The largest |a - b| / max|a| over the checkpoints' tensors, by Python torch.
  static double RelativeDifference(const std::string& a, const std::string& b) {
    const auto py = ::uniter::testing::Run(
        Quote(::uniter::testing::Python()) + " -c " +
        Quote("import sys, torch; a, b = (torch.load(p) for p in sys.argv[1:]); assert a.keys() == b.keys(); "
              "print(*max((((a[k].double() - b[k].double()).abs().max() / a[k].double().abs().max().clamp_min(1e-30))"
              ".item(), k) for k in a))") +
        " " + Quote(a) + " " + Quote(b));
    EXPECT_EQ(py.exit_code, 0) << py.out;
    std::printf("largest relative weight difference: %s", py.out.c_str());  // "value key"
    return py.exit_code == 0 ? std::stod(py.out) : 1.0;
  }

  void ExpectSameRunAsOneProcess(const std::string& out) {
    const std::string ckpt = "/ckpt/model_step_" + std::to_string(kSteps) + ".pt";
    EXPECT_EQ(Files(out), Files(*one_)) << "rank 0 writes what one process writes, no other rank writes";
    for (const char* step : {"5", "10"}) {
      const std::string csv = std::string("/results/val_results_") + step + "_rank0.csv";
      EXPECT_EQ(::uniter::testing::ReadFile(out + csv), ::uniter::testing::ReadFile(*one_ + csv)) << csv;
    }
    UNITER_REQUIRE_PYTHON_MODULE("torch");
    EXPECT_LE(RelativeDifference(*one_ + ckpt, out + ckpt), 1e-6);
  }

  static std::string* root_;
  static std::string* one_;
};
std::string* DistTrain::root_ = nullptr;
std::string* DistTrain::one_ = nullptr;

TEST_F(DistTrain, TwoGlooRanksEqualOneProcessAccumulatingTwo) {
  const std::string out = *root_ + "/two", logs = *root_ + "/two.log";
  const auto r = TwoRanks(Train(out), logs);
  ASSERT_EQ(r.out, "0 0\n") << ::uniter::testing::ReadFile(logs + ".0") << ::uniter::testing::ReadFile(logs + ".1");
  EXPECT_EQ(::uniter::testing::ReadFile(logs + ".1"), "") << "rank 1 prints nothing";
  EXPECT_NE(::uniter::testing::ReadFile(logs + ".0").find(out + ": 10 steps, val_acc="), std::string::npos);
  ExpectSameRunAsOneProcess(out);
}

TEST_F(DistTrain, TorchrunLaunchesTwoRanksThatEqualOneProcess) {
  const std::string torchrun = std::string(std::getenv("HOME") ? std::getenv("HOME") : "") +
                               "/.cache/uniter/venv-cuda/bin/torchrun";
  UNITER_REQUIRE_REFERENCE(fs::exists(torchrun)) << torchrun << " (PyPI torch) is missing";
  const std::string out = *root_ + "/torchrun";
  const auto r = ::uniter::testing::Run(Quote(torchrun) + " --nproc-per-node=2 --master-addr=127.0.0.1 --master-port=" +
                                        std::to_string(::uniter::testing::FreePorts(2)) + " --no-python " +
                                        Quote(::uniter::testing::UniterBinary()) + " " + Train(out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ExpectSameRunAsOneProcess(out);
}

// Both ranks killed with SIGKILL once the step-5 state exists; the same
// command resumes both (each its own generators) to the uninterrupted run's
// bytes. Resuming with another number of processes is refused.
TEST_F(DistTrain, KilledTwoRankRunResumesToTheUninterruptedResult) {
  const std::string a = *root_ + "/resume_a", b = *root_ + "/resume_b";
  const std::string args = " --dropout 0.1";  // per-rank torch generators matter
  ASSERT_EQ(TwoRanks(Train(a) + args, *root_ + "/ra.log").out, "0 0\n")
      << ::uniter::testing::ReadFile(*root_ + "/ra.log.0") << ::uniter::testing::ReadFile(*root_ + "/ra.log.1");
  const std::string marker = b + "/train_state/state_step_5.json";
  const int port = ::uniter::testing::FreePorts(2);
  const auto killed = ::uniter::testing::Run(
      Rank(0, port, Train(b) + args, *root_ + "/rb.log.0") + "p0=$!; " +
      Rank(1, port, Train(b) + args, *root_ + "/rb.log.1") + "p1=$!; " + "while [ ! -e " + Quote(marker) +
      " ] && kill -0 $p0 2>/dev/null; do sleep 0.02; done; kill -9 $p0 $p1; wait $p0; echo $?");
  ASSERT_EQ(killed.out, "137\n") << "the run was not killed mid-way";
  ASSERT_FALSE(fs::exists(b + "/ckpt/model_step_10.pt")) << "the run finished before the kill";

  const auto one = Uniter(Train(b) + args + " 2>&1");
  EXPECT_NE(one.exit_code, 0);
  EXPECT_NE(one.out.find("trained by 2 process(es), this run has 1"), std::string::npos) << one.out;

  const auto rb = TwoRanks(Train(b) + args, *root_ + "/rb2.log");
  ASSERT_EQ(rb.out, "0 0\n") << ::uniter::testing::ReadFile(*root_ + "/rb2.log.0")
                             << ::uniter::testing::ReadFile(*root_ + "/rb2.log.1");
  EXPECT_NE(::uniter::testing::ReadFile(*root_ + "/rb2.log.0").find("resuming at step 5"), std::string::npos);
  for (const char* f : {"/ckpt/model_step_10.pt", "/results/val_results_10_rank0.csv"})
    EXPECT_TRUE(::uniter::testing::ReadFile(a + f) == ::uniter::testing::ReadFile(b + f)) << f;
}

// A rank that fails ends the other one with an error instead of a hang; each
// error line names its rank.
TEST_F(DistTrain, OneRankFailingEndsBothWithTheRankNamed) {
  const std::string out = *root_ + "/fail", logs = *root_ + "/fail.log";
  const int port = ::uniter::testing::FreePorts(2);
  // Rank 1 reads a txt_db that does not exist; rank 0 waits for it at the first collective.
  const auto r = ::uniter::testing::Run(
      Rank(0, port, Train(out), logs + ".0") + "p0=$!; " +
      Rank(1, port, Train(out) + " --val_txt_db " + Quote(*root_ + "/missing"), logs + ".1") +
      "p1=$!; wait $p0; r0=$?; wait $p1; echo $r0 $?");
  EXPECT_NE(r.out, "0 0\n");
  EXPECT_EQ(r.out.find("0 "), std::string::npos) << "rank 0 must fail too: " << r.out;
  const std::string log1 = ::uniter::testing::ReadFile(logs + ".1");
  EXPECT_NE(log1.find("rank 1 of 2"), std::string::npos) << log1;
  EXPECT_NE(log1.find(*root_ + "/missing"), std::string::npos) << log1;
  const std::string log0 = ::uniter::testing::ReadFile(logs + ".0");
  EXPECT_NE(log0.find("rank 0 of 2"), std::string::npos) << log0;
}

}  // namespace
}  // namespace uniter::trainer
