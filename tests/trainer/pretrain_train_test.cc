// issue #12: `uniter pretrain` end to end on generated caption dbs
// (pretrain_val_ref.py gen: colour words and colour-coded regions whose
// detector class follows the colour). The run learns (MLM loss falls, MRC
// accuracy far above chance), logs UNITER's TensorBoard tags, resumes a
// kill -9 to the uninterrupted bytes, runs as 2 Gloo ranks equal to one
// process accumulating 2, and its --validate-only lines equal pretrain.py's
// validate functions restated in Python on the same checkpoint and dbs.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::WriteFile;

std::string TestDir() { return UNITER_TRAINER_TEST_DIR; }

::uniter::testing::CommandResult Sh(const std::string& cmd) { return ::uniter::testing::Run(cmd); }

// "task: loss=X acc=Y" lines → task → {loss, acc}.
std::map<std::string, std::map<std::string, double>> ParseValLines(const std::string& text) {
  std::map<std::string, std::map<std::string, double>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(": loss=");
    if (colon == std::string::npos) continue;
    std::istringstream fields(line.substr(colon + 2));
    std::string kv;
    while (fields >> kv) {
      const size_t eq = kv.find('=');
      out[line.substr(0, colon)][kv.substr(0, eq)] = std::stod(kv.substr(eq + 1));
    }
  }
  return out;
}

class PretrainRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::uniter::testing::TempDir("pretrain_run"));
    gen_ = Sh(Quote(::uniter::testing::Python()) + " " + Quote(TestDir() + "/pretrain_val_ref.py") + " gen " +
               Quote(*root_) + " 5 2>&1");
    WriteModelConfigs();
  }
  static void WriteModelConfigs() {
    for (const double p : {0.1, 0.0})
      WriteFile(*root_ + (p > 0 ? "/model.json" : "/model_nodrop.json"),
                nlohmann::json{{"vocab_size", 128}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                               {"num_attention_heads", 4}, {"intermediate_size", 128}, {"hidden_act", "gelu"},
                               {"hidden_dropout_prob", p}, {"attention_probs_dropout_prob", p},
                               {"max_position_embeddings", 64}, {"type_vocab_size", 2},
                               {"initializer_range", 0.02}}
                    .dump(2));
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    UNITER_REQUIRE_PYTHON_MODULE("msgpack_numpy");
    ASSERT_EQ(gen_.exit_code, 0) << gen_.out;
  }

  // A pretrain config over the generated dbs; `tasks` train and validate.
  static std::string Config(const std::string& name, const std::vector<std::string>& tasks,
                            const std::vector<int>& ratios, nlohmann::json extra = {}) {
    const nlohmann::json train = {{"name", "cap"}, {"db", {*root_ + "/txt_train"}}, {"img", {*root_ + "/img"}},
                                  {"tasks", tasks}, {"mix_ratio", ratios}};
    const nlohmann::json val = {{"name", "cap"}, {"db", {*root_ + "/txt_val"}}, {"img", {*root_ + "/img"}},
                                {"tasks", tasks}};
    nlohmann::json c = {{"model_config", *root_ + "/model.json"}, {"output_dir", *root_ + "/unused"},
                        {"mrm_prob", 0.15}, {"itm_neg_prob", 0.5}, {"itm_ot_lambda", 0.1},
                        {"train_batch_size", 512}, {"val_batch_size", 2048},
                        {"gradient_accumulation_steps", 1}, {"learning_rate", 1e-3},
                        {"valid_steps", 10}, {"num_train_steps", 20}, {"optim", "adamw"},
                        {"betas", {0.9, 0.98}}, {"dropout", 0.1}, {"weight_decay", 0.01},
                        {"grad_norm", 5.0}, {"warmup_steps", 5}, {"seed", 42}, {"fp16", true},
                        {"n_workers", 2}, {"pin_mem", true},
                        {"train_datasets", {train}}, {"val_datasets", {val}}};
    if (extra.is_object()) c.update(extra);
    const std::string path = *root_ + "/" + name + ".json";
    WriteFile(path, c.dump(4));
    return path;
  }
  static ::uniter::testing::CommandResult Uniter(const std::string& args) {
    return Sh(Quote(::uniter::testing::UniterBinary()) + " " + args);
  }
  static std::string Pretrain(const std::string& config, const std::string& out) {
    return "pretrain --config " + Quote(config) + " --output_dir " + Quote(out) + " --threads 1";
  }
  // tag → step → value, from every events file under out/log.
  static std::map<std::string, std::map<int64_t, double>> Scalars(const std::string& out) {
    std::map<std::string, std::map<int64_t, double>> s;
    for (const auto& e : fs::directory_iterator(out + "/log")) {
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) != 0) continue;
      const auto r = Sh(Quote(::uniter::testing::Python()) + " " + Quote(TestDir() + "/read_events.py") + " " +
                         Quote(e.path().string()));
      EXPECT_EQ(r.exit_code, 0) << r.out;
      const nlohmann::json j = nlohmann::json::parse(r.out);
      for (const auto& v : j.at("scalars"))
        s[v[0].get<std::string>()][v[1].get<int64_t>()] = v[2].get<double>();
    }
    return s;
  }

  static std::string* root_;
  static ::uniter::testing::CommandResult gen_;
};
std::string* PretrainRun::root_ = nullptr;
::uniter::testing::CommandResult PretrainRun::gen_;

TEST_F(PretrainRun, MlmLossFallsAndMrcAccuracyRisesWithUniterTags) {
  UNITER_REQUIRE_PYTHON_MODULE("tensorboard");
  const std::string out = *root_ + "/learn";
  const std::string config = Config("learn", {"mlm", "mrc", "itm"}, {2, 1, 1},
                                    {{"num_train_steps", 240}, {"valid_steps", 120}, {"warmup_steps", 20}});
  const auto r = Uniter(Pretrain(config, out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto s = Scalars(out);
  for (const char* tag : {"lr", "grad_norm", "loss/mlm_cap", "loss/mrc_cap", "loss/itm_cap", "loss/itm_cap_xe",
                          "loss/itm_cap_ot", "loss/itm_cap_ot_pos", "loss/itm_cap_ot_neg",
                          "perf/mlm_cap_ex_per_s", "valid_mlm_cap/mlm_cap_loss", "valid_mlm_cap/mlm_cap_acc",
                          "valid_mlm_cap/mlm_cap_tok_per_s", "valid_mrc_cap/mrc_cap_acc",
                          "valid_mrc_cap/mrc_cap_feat_per_s", "valid_itm_cap/itm_cap_valid/acc",
                          "valid_itm_cap/itm_cap_valid/ot_loss"})
    EXPECT_TRUE(s.count(tag)) << tag;
  // TB_LOGGER.log_scaler_dict runs before its step(): loss meters at steps 0..N-1, lr at 1..N.
  EXPECT_EQ(s.at("loss/mlm_cap").begin()->first, 0);
  EXPECT_EQ(s.at("lr").begin()->first, 1);
  EXPECT_EQ(s.at("lr").size(), 240u);
  const double first_mlm = s.at("loss/mlm_cap").at(0), chance = std::log(128.0);
  const double val_mlm = s.at("valid_mlm_cap/mlm_cap_loss").at(240);
  const double mrc_acc = s.at("valid_mrc_cap/mrc_cap_acc").at(240);
  std::printf("mlm loss: first %.4f, val %.4f at step 240; mrc val acc %.4f\n", first_mlm, val_mlm, mrc_acc);
  EXPECT_GT(first_mlm, 0.8 * chance);
  EXPECT_LT(val_mlm, 0.85 * first_mlm);  // fillers are uniform over 80 words: ~0.8 is the floor
  EXPECT_GT(mrc_acc, 0.9) << "chance is 1/1600 (4 classes in the data)";
  EXPECT_TRUE(fs::exists(out + "/ckpt/model_step_240.pt"));
  EXPECT_TRUE(fs::exists(out + "/log/hps.json"));
  EXPECT_EQ(nlohmann::json::parse(ReadFile(out + "/log/model.json")),
            nlohmann::json::parse(ReadFile(*root_ + "/model.json")));
}

TEST_F(PretrainRun, CheckpointHasUniterForPretrainingKeys) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string out = *root_ + "/keys";
  const auto r = Uniter(Pretrain(Config("keys", {"mlm"}, {1}, {{"num_train_steps", 2}}), out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // UniterForPretraining's state_dict as the Python restatement builds it.
  const auto py = Sh(Quote(::uniter::testing::Python()) + " -c " +
                      Quote("import sys, json, torch; sys.path.insert(0, sys.argv[1]); "
                            "from pretrain_ref import Pretrain; from uniter_ref import Cfg; "
                            "m = Pretrain(Cfg(json.load(open(sys.argv[2])))); s = torch.load(sys.argv[3]); "
                            "want = set(m.state_dict()); got = set(s); "
                            "print(sorted(want ^ got)); "
                            "print(all(s[k].shape == v.shape for k, v in m.state_dict().items() if k in s))") +
                      " " + Quote(TestDir()) + " " + Quote(*root_ + "/model.json") + " " +
                      Quote(out + "/ckpt/model_step_2.pt") + " 2>&1");
  ASSERT_EQ(py.exit_code, 0) << py.out;
  EXPECT_EQ(py.out, "[]\nTrue\n");
  // The optimizer holds a tied tensor once, under its first name in
  // PyTorch's named_parameters() (the embeddings', not the heads').
  const auto optim = Sh(Quote(::uniter::testing::Python()) + " -c " +
                        Quote("import sys, torch; s = torch.load(sys.argv[1]); "
                              "k = {n[6:].rsplit('.', 1)[0] for n in s if n.startswith('optim.')}; "
                              "print('uniter.embeddings.word_embeddings.weight' in k, "
                              "'uniter.img_embeddings.img_linear.weight' in k, "
                              "'cls.predictions.decoder.weight' in k, 'feat_regress.weight' in k)") +
                        " " + Quote(out + "/train_state/state_step_2.pt") + " 2>&1");
  ASSERT_EQ(optim.exit_code, 0) << optim.out;
  EXPECT_EQ(optim.out, "True True False False\n");
}

// Starting from BERT: a pytorch-pretrained-bert pytorch_model.bin (bert.*
// keys, gamma/beta) reaches UniterForPretraining's keys, the MLM decoder
// tied to the loaded word embeddings (learning_rate 0 runs at get_lr_sched's
// floor of 1e-8: the weights stay within 1e-6 of the loaded ones).
TEST_F(PretrainRun, StartsFromABertCheckpoint) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string py = Quote(::uniter::testing::Python()) + " " + Quote(TestDir() + "/pretrain_val_ref.py");
  const std::string bert = *root_ + "/bert.bin", out = *root_ + "/from_bert";
  const auto made = Sh(py + " bert " + Quote(*root_ + "/model.json") + " " + Quote(bert) + " 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.out;
  const std::string config = Config("bert", {"mlm"}, {1}, {{"num_train_steps", 2}, {"learning_rate", 0.0}});
  const auto r = Uniter(Pretrain(config, out) + " --checkpoint " + Quote(bert) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto check = Sh(py + " check_init " + Quote(bert) + " " + Quote(out + "/ckpt/model_step_2.pt") + " 2>&1");
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(check.out.rfind("ok ", 0), 0u) << check.out;
}

TEST_F(PretrainRun, KilledRunResumesToTheUninterruptedBytes) {
  const std::string config = Config("resume", {"mlm", "mrfr", "mrckl", "itm"}, {2, 1, 1, 2},
                                    {{"num_train_steps", 30}, {"valid_steps", 10}, {"gradient_accumulation_steps", 2}});
  const std::string a = *root_ + "/resume_a", b = *root_ + "/resume_b";
  const auto ra = Uniter(Pretrain(config, a) + " 2>&1");
  ASSERT_EQ(ra.exit_code, 0) << ra.out;
  const std::string marker = b + "/train_state/state_step_10.json";
  const auto killed = Sh(Quote(::uniter::testing::UniterBinary()) + " " + Pretrain(config, b) +
                          " > /dev/null 2>&1 & p=$!; while [ ! -e " + Quote(marker) +
                          " ] && kill -0 $p 2>/dev/null; do sleep 0.02; done; kill -9 $p; wait $p; echo $?");
  ASSERT_EQ(killed.out, "137\n") << "the run was not killed mid-way";
  ASSERT_FALSE(fs::exists(b + "/ckpt/model_step_30.pt"));
  const auto rb = Uniter(Pretrain(config, b) + " 2>&1");
  ASSERT_EQ(rb.exit_code, 0) << rb.out;
  EXPECT_NE(rb.out.find("resuming at step"), std::string::npos) << rb.out;
  for (const char* f : {"/ckpt/model_step_20.pt", "/ckpt/model_step_30.pt"})
    EXPECT_TRUE(ReadFile(a + f) == ReadFile(b + f)) << f;
  // The final validation lines (printed on stdout) agree too.
  EXPECT_EQ(ParseValLines(ra.out), ParseValLines(rb.out));
}

TEST_F(PretrainRun, TwoGlooRanksSummingEqualOneProcessAccumulatingTwo) {
  // No dropout: ranks draw other random numbers than one process.
  const std::string config = Config("dist", {"mlm", "mrc", "itm"}, {1, 1, 1},
                                    {{"num_train_steps", 12}, {"valid_steps", 6}, {"dropout", 0.0},
                                     {"grad_reduce", "sum"}, {"model_config", *root_ + "/model_nodrop.json"}});
  const std::string one = *root_ + "/dist_one", two = *root_ + "/dist_two";
  const auto r1 = Uniter(Pretrain(config, one) + " --gradient_accumulation_steps 2 2>&1");
  ASSERT_EQ(r1.exit_code, 0) << r1.out;
  const int port = ::uniter::testing::FreePorts(1);
  auto rank = [&](int r) {
    return "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
           " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
           Quote(::uniter::testing::UniterBinary()) + " " + Pretrain(config, two) + " --dist-timeout 120 > " +
           Quote(*root_ + "/dist.log." + std::to_string(r)) + " 2>&1 & ";
  };
  const auto r2 = Sh(rank(0) + "p0=$!; " + rank(1) + "p1=$!; wait $p0; r0=$?; wait $p1; echo $r0 $?");
  ASSERT_EQ(r2.out, "0 0\n") << ReadFile(*root_ + "/dist.log.0") << ReadFile(*root_ + "/dist.log.1");
  for (const char* f : {"/ckpt/model_step_6.pt", "/ckpt/model_step_12.pt"})
    EXPECT_TRUE(ReadFile(one + f) == ReadFile(two + f)) << f << " differs";
  EXPECT_EQ(ParseValLines(r1.out), ParseValLines(ReadFile(*root_ + "/dist.log.0")));
}

TEST_F(PretrainRun, ValidateOnlyEqualsUniterValidateRestated) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string config = Config("val", {"mlm", "mrfr", "mrc", "mrckl", "itm"}, {1, 1, 1, 1, 1},
                                    {{"num_train_steps", 15}, {"valid_steps", 15}});
  const std::string out = *root_ + "/val";
  const auto r = Uniter(Pretrain(config, out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string ckpt = out + "/ckpt/model_step_15.pt";
  const auto ours = Uniter("pretrain --validate-only --checkpoint " + Quote(ckpt) + " --config " + Quote(config) +
                           " --threads 1 -q");
  ASSERT_EQ(ours.exit_code, 0) << ours.out;
  nlohmann::json c = nlohmann::json::parse(ReadFile(config));
  c["checkpoint"] = ckpt;
  WriteFile(out + "/case.json", c.dump());
  const auto ref = Sh(Quote(::uniter::testing::Python()) + " " + Quote(TestDir() + "/pretrain_val_ref.py") +
                       " validate " + Quote(out + "/case.json") + " 2>&1");
  ASSERT_EQ(ref.exit_code, 0) << ref.out;
  const auto got = ParseValLines(ours.out), want = ParseValLines(ref.out);
  ASSERT_EQ(got.size(), 5u) << ours.out;
  ASSERT_EQ(want.size(), 5u) << ref.out;
  for (const auto& [task, values] : want) {
    ASSERT_TRUE(got.count(task)) << task;
    ASSERT_EQ(got.at(task).size(), values.size()) << task;
    for (const auto& [k, v] : values) EXPECT_NEAR(got.at(task).at(k), v, 1e-5) << task << " " << k;
  }
  // The run's own final validation printed the same lines.
  EXPECT_EQ(ParseValLines(r.out), got);
}

// --dump-batches: each task's first 2 micro-batches under UNITER's collate
// keys, their `loss` recomputed by pretrain.py's forward + reduction
// (pretrain_val_ref.py dumps) with the run's weights (no dropout; learning_rate
// 0, which get_lr_sched floors at 1e-8: every micro-batch saw the
// checkpoint's weights to ~1e-7, far inside the 1e-5 tolerance).
TEST_F(PretrainRun, DumpedBatchesRecomputeToTheirLossInPython) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string config = Config("dump", {"mlm", "mrfr", "mrc", "mrckl", "itm"}, {1, 1, 1, 1, 1},
                                    {{"num_train_steps", 30}, {"valid_steps", 30}, {"learning_rate", 0.0},
                                     {"dropout", 0.0}, {"model_config", *root_ + "/model_nodrop.json"}});
  const std::string out = *root_ + "/dump", dir = *root_ + "/dump_batches";
  const auto r = Uniter(Pretrain(config, out) + " --dump-batches 2 " + Quote(dir) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ref = Sh(Quote(::uniter::testing::Python()) + " " + Quote(TestDir() + "/pretrain_val_ref.py") +
                      " dumps " + Quote(dir) + " " + Quote(out + "/ckpt/model_step_30.pt") + " " +
                      Quote(*root_ + "/model_nodrop.json") + " 0.1");
  ASSERT_EQ(ref.exit_code, 0) << ref.out;
  std::istringstream in(ref.out);
  std::string stem;
  double ours = 0, want = 0;
  std::vector<std::string> stems;
  while (in >> stem >> ours >> want) {
    stems.push_back(stem);
    EXPECT_NEAR(ours, want, 1e-5 * std::max(1.0, std::fabs(want))) << stem;
  }
  EXPECT_EQ(stems, (std::vector<std::string>{"itm_cap_000", "itm_cap_001", "mlm_cap_000", "mlm_cap_001",
                                             "mrc_cap_000", "mrc_cap_001", "mrckl_cap_000", "mrckl_cap_001",
                                             "mrfr_cap_000", "mrfr_cap_001"}))
      << ref.out;
}

TEST_F(PretrainRun, BadConfigKeyOrMissingDbFailsInOneLine) {
  const std::string config = Config("bad", {"mlm"}, {1}, {{"not_a_key", 1}});
  const auto bad = Uniter(Pretrain(config, *root_ + "/bad_out") + " 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("unknown option 'not_a_key'"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("mrm_prob"), std::string::npos) << "lists the valid keys: " << bad.out;
  EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;

  nlohmann::json c = nlohmann::json::parse(ReadFile(Config("missing", {"mlm"}, {1})));
  c["train_datasets"][0]["db"] = {*root_ + "/no_such_db"};
  WriteFile(*root_ + "/missing.json", c.dump());
  const auto missing = Uniter(Pretrain(*root_ + "/missing.json", *root_ + "/missing_out") + " 2>&1");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find(*root_ + "/no_such_db"), std::string::npos) << missing.out;
  EXPECT_EQ(std::count(missing.out.begin(), missing.out.end(), '\n'), 1) << missing.out;
  EXPECT_FALSE(fs::exists(*root_ + "/missing_out")) << "nothing written on a bad input";

  // A val db tokenized by another BERT than the train db (meta.json 'bert').
  fs::copy(*root_ + "/txt_val", *root_ + "/txt_val_uncased", fs::copy_options::recursive);
  nlohmann::json meta = nlohmann::json::parse(ReadFile(*root_ + "/txt_val_uncased/meta.json"));
  meta["bert"] = "bert-base-uncased";
  WriteFile(*root_ + "/txt_val_uncased/meta.json", meta.dump());
  c = nlohmann::json::parse(ReadFile(Config("uncased", {"mlm"}, {1})));
  c["val_datasets"][0]["db"] = {*root_ + "/txt_val_uncased"};
  WriteFile(*root_ + "/uncased.json", c.dump());
  const auto mixed = Uniter(Pretrain(*root_ + "/uncased.json", *root_ + "/uncased_out") + " 2>&1");
  EXPECT_NE(mixed.exit_code, 0);
  EXPECT_NE(mixed.out.find("tokenized differently"), std::string::npos) << mixed.out;
  EXPECT_EQ(std::count(mixed.out.begin(), mixed.out.end(), '\n'), 1) << mixed.out;
  EXPECT_FALSE(fs::exists(*root_ + "/uncased_out"));
}

}  // namespace
}  // namespace uniter::trainer
