// issue #12, VCR second stage: `uniter pretrain --vcr` (UNITER's
// pretrain_vcr.py) end to end on a generated VCR db (pretrain_data_ref.py
// vcr_gen: gt + detected img_dbs, 2048-wide features, 1601 soft labels, text
// from a 30-token vocabulary) with configs holding exactly the keys of
// UNITER's pretrain-vcr-base-4gpu.json. The model loads a UNITER checkpoint
// and is expanded as pretrain_vcr.py's (keys and shapes equal the Python
// restatement's, the loaded rows kept); dumped batches recompute to their
// loss in pretrain_ref.py's VCR model; the default reads QAR text only (UNITER's
// dict-key overwrite), --fix-uniter-quirks QA too; a kill -9 resumes to the
// uninterrupted bytes; MLM loss falls.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;
using ::uniter::testing::ReadFile;
using ::uniter::testing::WriteFile;

std::string TestDir() { return UNITER_TRAINER_TEST_DIR; }
::uniter::testing::CommandResult Sh(const std::string& cmd) { return ::uniter::testing::Run(cmd); }
std::string Py() { return Quote(::uniter::testing::Python()); }

class VcrPretrainRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::uniter::testing::TempDir("vcr_pretrain_run"));
    // bert-base-cased's vocabulary size: the db's v_range reaches it.
    WriteFile(*root_ + "/model.json",
              nlohmann::json{{"vocab_size", 28996}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                             {"num_attention_heads", 4}, {"intermediate_size", 128}, {"hidden_act", "gelu"},
                             {"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0},
                             {"max_position_embeddings", 64}, {"type_vocab_size", 2}, {"initializer_range", 0.02}}
                  .dump(2));
    gen_ = Sh(Py() + " " + Quote(TestDir() + "/pretrain_data_ref.py") + " vcr_gen " + Quote(*root_) +
              " 7 2048 1601 136 2>&1 && " + Py() + " -c " +
              Quote("import sys, json, torch; sys.path.insert(0, sys.argv[1]); "
                    "from pretrain_ref import Pretrain; from uniter_ref import Cfg; torch.manual_seed(5); "
                    "torch.save(Pretrain(Cfg(json.load(open(sys.argv[2])))).state_dict(), sys.argv[3])") +
              " " + Quote(TestDir()) + " " + Quote(*root_ + "/model.json") + " " + Quote(*root_ + "/uniter.pt") +
              " 2>&1");
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    UNITER_REQUIRE_PYTHON_MODULE("torch");
    UNITER_REQUIRE_PYTHON_MODULE("lmdb");
    ASSERT_EQ(gen_.exit_code, 0) << gen_.out;
  }

  // pretrain-vcr-base-4gpu.json's keys (rank included), values for the test.
  static std::string Config(const std::string& name, nlohmann::json extra = {}) {
    const std::string img = *root_ + "/vcr_gt;" + *root_ + "/vcr_det";
    const std::vector<std::string> tasks = {"mlm", "mrfr", "mrckl"};
    nlohmann::json c = {
        {"model_config", *root_ + "/model.json"}, {"checkpoint", *root_ + "/uniter.pt"},
        {"output_dir", *root_ + "/unused"}, {"mrm_prob", 0.15}, {"max_txt_len", 220}, {"conf_th", 0.2},
        {"max_bb", 100}, {"min_bb", 10}, {"num_bb", 36}, {"train_batch_size", 2048}, {"val_batch_size", 4000},
        {"gradient_accumulation_steps", 1}, {"learning_rate", 1e-3}, {"valid_steps", 10},
        {"num_train_steps", 20}, {"optim", "adamw"}, {"betas", {0.9, 0.98}}, {"dropout", 0.1},
        {"weight_decay", 0.01}, {"grad_norm", -1}, {"warmup_steps", 5}, {"seed", 42}, {"fp16", true},
        {"n_workers", 2}, {"pin_mem", true},
        {"train_datasets",
         {{{"name", "vcr"}, {"db", {*root_ + "/vcr.db"}}, {"img", {img}}, {"tasks", tasks}, {"mix_ratio", {2, 1, 1}}}}},
        {"val_datasets", {{{"name", "vcr"}, {"db", {*root_ + "/vcr.db"}}, {"img", {img}}, {"tasks", tasks}}}},
        {"rank", 0}};
    if (extra.is_object()) c.update(extra);
    const std::string path = *root_ + "/" + name + ".json";
    WriteFile(path, c.dump(4));
    return path;
  }
  static std::string Pretrain(const std::string& config, const std::string& out) {
    return Quote(::uniter::testing::UniterBinary()) + " pretrain --vcr --config " + Quote(config) +
           " --output_dir " + Quote(out) + " --threads 1";
  }
  // Per dumped file of `task`: "rows rows_with_a_rationale" (type id 3).
  static std::string RationaleRows(const std::string& dir) {
    return Sh(Py() + " -c " +
              Quote("import sys, glob, numpy as np\n"
                    "for f in sorted(glob.glob(sys.argv[1] + '/*.npz')):\n"
                    "    t = np.load(f)['txt_type_ids']; print(len(t), int((t == 3).any(1).sum()))") +
              " " + Quote(dir) + " 2>&1")
        .out;
  }

  static std::string* root_;
  static ::uniter::testing::CommandResult gen_;
};
std::string* VcrPretrainRun::root_ = nullptr;
::uniter::testing::CommandResult VcrPretrainRun::gen_;

// (a) keys / shapes of UniterForPretrainingForVCR after init_type_embedding +
// init_word_embedding(81), and the loaded checkpoint's rows kept (learning
// rate 0 runs at get_lr_sched's floor 1e-8: two steps move a weight < 1e-6).
TEST_F(VcrPretrainRun, CheckpointIsTheExpandedModelOfTheLoadedUniter) {
  const std::string out = *root_ + "/keys";
  const auto r = Sh(Pretrain(Config("keys", {{"num_train_steps", 2}, {"learning_rate", 0.0}}), out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto py = Sh(Py() + " -c " +
                     Quote("import sys, json, torch; sys.path.insert(0, sys.argv[1]); "
                           "from pretrain_ref import Pretrain; from uniter_ref import Cfg; "
                           "m = Pretrain(Cfg(json.load(open(sys.argv[2])))); "
                           "m.init_type_embedding(); m.init_word_embedding(81); "
                           "s = torch.load(sys.argv[3]); u = torch.load(sys.argv[4]); want = m.state_dict(); "
                           "print(sorted(set(want) ^ set(s))); "
                           "print(all(s[k].shape == v.shape for k, v in want.items() if k in s)); "
                           "w = s['uniter.embeddings.word_embeddings.weight'].float(); "
                           "t = s['uniter.embeddings.token_type_embeddings.weight'].float(); "
                           "uw = u['uniter.embeddings.word_embeddings.weight']; "
                           "ut = u['uniter.embeddings.token_type_embeddings.weight']; "
                           "print(tuple(w.shape), tuple(t.shape)); "
                           "print(float((w[:28996] - uw).abs().max()) < 1e-6, "
                           "float((t - ut[[0, 1, 0, 0]]).abs().max()) < 1e-6, "
                           "float(w[28996:].std()) > 0.01, "
                           "torch.equal(s['cls.predictions.decoder.weight'], "
                           "s['uniter.embeddings.word_embeddings.weight']))") +
                     " " + Quote(TestDir()) + " " + Quote(*root_ + "/model.json") + " " +
                     Quote(out + "/ckpt/model_step_2.pt") + " " + Quote(*root_ + "/uniter.pt") + " 2>&1");
  ASSERT_EQ(py.exit_code, 0) << py.out;
  EXPECT_EQ(py.out, "[]\nTrue\n(29077, 64) (4, 64)\nTrue True True True\n");
  EXPECT_EQ(nlohmann::json::parse(ReadFile(out + "/log/hps.json")).value("vcr", false), true);
}

// (b) --dump-batches: each task's micro-batches (txt_type_ids included)
// recompute to their loss with pretrain_vcr.py's model (pretrain_val_ref.py
// dumps ... vcr) within 1e-5; UNITER's QAR-overwrites-QA quirk by default,
// both texts with --fix-uniter-quirks.
TEST_F(VcrPretrainRun, DumpedBatchesRecomputeInPythonAndReadQarTextUnlessFixed) {
  const std::string config = Config("dump", {{"learning_rate", 0.0}, {"dropout", 0.0}});
  const std::string out = *root_ + "/dump", dir = *root_ + "/dump_batches";
  const auto r = Sh(Pretrain(config, out) + " --dump-batches 2 " + Quote(dir) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ref = Sh(Py() + " " + Quote(TestDir() + "/pretrain_val_ref.py") + " dumps " + Quote(dir) + " " +
                      Quote(out + "/ckpt/model_step_20.pt") + " " + Quote(*root_ + "/model.json") + " 0 vcr");
  ASSERT_EQ(ref.exit_code, 0) << ref.out;
  std::istringstream in(ref.out);
  std::string stem;
  double ours = 0, want = 0;
  std::vector<std::string> stems;
  while (in >> stem >> ours >> want) {
    stems.push_back(stem);
    EXPECT_NEAR(ours, want, 1e-5 * std::max(1.0, std::fabs(want))) << stem;
  }
  EXPECT_EQ(stems, (std::vector<std::string>{"mlm_vcr_000", "mlm_vcr_001", "mrckl_vcr_000", "mrckl_vcr_001",
                                             "mrfr_vcr_000", "mrfr_vcr_001"}))
      << ref.out;

  // --validate-only on the expanded checkpoint prints the run's final validation lines.
  const auto val = Sh(Quote(::uniter::testing::UniterBinary()) + " pretrain --validate-only --vcr --checkpoint " +
                      Quote(out + "/ckpt/model_step_20.pt") + " --config " + Quote(config) + " --threads 1 -q");
  ASSERT_EQ(val.exit_code, 0) << val.out;
  ASSERT_NE(val.out.find("mrckl_vcr: loss="), std::string::npos) << val.out;
  for (const char* task : {"mlm_vcr: ", "mrfr_vcr: ", "mrckl_vcr: "}) {
    const std::string line = val.out.substr(val.out.find(task), val.out.find('\n', val.out.find(task)) -
                                                                     val.out.find(task) + 1);
    EXPECT_NE(r.out.find("\n" + line), std::string::npos) << line << " not in the run's output";
  }

  // Every dumped row has a rationale (type 3): QAR only, as UNITER trains.
  int rows = 0, with_r = 0, n = 0, k = 0;
  std::istringstream quirk(RationaleRows(dir));
  while (quirk >> n >> k) rows += n, with_r += k;
  EXPECT_GT(rows, 0);
  EXPECT_EQ(with_r, rows);

  const std::string fixed = *root_ + "/dump_fixed_batches";
  const auto f = Sh(Pretrain(config, *root_ + "/dump_fixed") + " --fix-uniter-quirks --num_train_steps 6 " +
                    "--dump-batches 2 " + Quote(fixed) + " 2>&1");
  ASSERT_EQ(f.exit_code, 0) << f.out;
  rows = with_r = 0;
  std::istringstream both(RationaleRows(fixed));
  while (both >> n >> k) rows += n, with_r += k;
  EXPECT_GT(with_r, 0) << "QAR rows";
  EXPECT_LT(with_r, rows) << "QA rows (no rationale)";
}

// (c) a kill -9 mid-run resumes to the uninterrupted run's bytes.
TEST_F(VcrPretrainRun, KilledRunResumesToTheUninterruptedBytes) {
  const std::string config = Config("resume");
  const std::string a = *root_ + "/resume_a", b = *root_ + "/resume_b";
  const auto ra = Sh(Pretrain(config, a) + " 2>&1");
  ASSERT_EQ(ra.exit_code, 0) << ra.out;
  const std::string marker = b + "/train_state/state_step_10.json";
  const auto killed = Sh(Pretrain(config, b) + " > /dev/null 2>&1 & p=$!; while [ ! -e " + Quote(marker) +
                         " ] && kill -0 $p 2>/dev/null; do sleep 0.02; done; kill -9 $p; wait $p; echo $?");
  ASSERT_EQ(killed.out, "137\n") << "the run was not killed mid-way";
  ASSERT_FALSE(fs::exists(b + "/ckpt/model_step_20.pt"));
  const auto rb = Sh(Pretrain(config, b) + " 2>&1");
  ASSERT_EQ(rb.exit_code, 0) << rb.out;
  EXPECT_NE(rb.out.find("resuming at step 10"), std::string::npos) << rb.out;
  EXPECT_TRUE(ReadFile(a + "/ckpt/model_step_20.pt") == ReadFile(b + "/ckpt/model_step_20.pt"));
}

// (d) MLM loss falls: the text uses 30 of the 29077 words (chance ln 29077 = 10.3).
TEST_F(VcrPretrainRun, MlmValidationLossFalls) {
  const std::string out = *root_ + "/learn";
  const std::string config = Config("learn", {{"num_train_steps", 120}, {"valid_steps", 60}, {"warmup_steps", 10}});
  const auto r = Sh(Pretrain(config, out) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // "step N: mlm_vcr loss=X acc=Y" at steps 60 and 120; the first training loss from the progress line.
  auto val_at = [&](const std::string& step) {
    const std::string key = "step " + step + ": mlm_vcr loss=";
    const size_t at = r.out.find(key);
    return at == std::string::npos ? NAN : std::stod(r.out.substr(at + key.size()));
  };
  const double v60 = val_at("60"), v120 = val_at("120"), chance = std::log(29077.0);
  std::printf("mlm_vcr val loss: step 60 %.4f, step 120 %.4f (chance %.4f)\n", v60, v120, chance);
  EXPECT_LT(v60, 0.8 * chance) << r.out;
  EXPECT_LT(v120, v60) << r.out;
  EXPECT_LT(v120, 0.6 * chance) << r.out;  // measured 5.66 (ln 30 = 3.4 is the unigram floor)
}

TEST_F(VcrPretrainRun, ItmIsNotAVcrTask) {
  nlohmann::json c = nlohmann::json::parse(ReadFile(Config("itm")));
  c["train_datasets"][0]["tasks"] = {"mlm", "itm"};
  c["train_datasets"][0]["mix_ratio"] = {1, 1};
  WriteFile(*root_ + "/itm.json", c.dump());
  const auto r = Sh(Pretrain(*root_ + "/itm.json", *root_ + "/itm_out") + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("VCR pretraining has no task 'itm'"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(*root_ + "/itm_out"));
}

}  // namespace
}  // namespace uniter::trainer
