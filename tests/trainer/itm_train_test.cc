// `uniter train|infer|eval itm` end to end on generated retrieval data: each
// image carries its own feature block and each of its captions names it with
// one word, so a tiny UNITER learns to rank (R@1 far above the 1/16 chance,
// checked here on the test split). infer writes UNITER's scores.json and a
// results.bin that Python's pickle.load reads, whose recall a Python
// restatement of itm_eval reproduces; --save-logits rounds to results.bin's
// fp16 scores; eval itm reads results.bin back. inf_itm's rank_output
// re-initialisation (default) vs --fix-uniter-quirks; zero-shot from a
// checkpoint without rank_output; hard-negative training runs; a txt_db
// without img2txts.json is refused in one line; bf16 CPU autocast scores
// near fp32's.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "featdb/img_db.h"
#include "featdb/npy.h"
#include "featdb/txt_db.h"
#include "tests/test_util.h"
#include "tests/trainer/dump_check.h"
#include "tests/trainer/dist_test_util.h"
#include "tests/trainer/logits_diff.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;

constexpr int kImages = 16;
constexpr int kBoxes = 10;
constexpr int kFeatDim = 2048;

// `prefix` names a second image db's images apart (COCO's train2014 / val2014).
std::string Img(int i, const std::string& prefix = "itm_") { return prefix + std::to_string(i) + ".npz"; }

// Image i: a block of ones at dims [64 i, 64 i + 64) in every box, plus noise.
void WriteImgDb(const std::string& dir, std::mt19937& gen, const std::string& prefix = "itm_") {
  featdb::ImgDbWriter w(dir, featdb::ImgDbOptions{});
  std::normal_distribution<float> noise(0.f, 0.05f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (int i = 0; i < kImages; ++i) {
    std::vector<float> feat(kBoxes * kFeatDim), bb(kBoxes * 6), conf(kBoxes, 0.9f);
    for (auto& f : feat) f = noise(gen);
    for (int b = 0; b < kBoxes; ++b) {
      for (int d = 0; d < 64; ++d) feat[b * kFeatDim + i * 64 + d] += 1.f;
      const float x = unit(gen) * 0.5f, y = unit(gen) * 0.5f, ww = 0.2f + unit(gen) * 0.3f, hh = 0.2f + unit(gen) * 0.3f;
      float* r = &bb[b * 6];
      r[0] = x, r[1] = y, r[2] = x + ww, r[3] = y + hh, r[4] = ww, r[5] = hh;
    }
    w.Put(Img(i, prefix), {featdb::Array::FromFloat32("features", {kBoxes, kFeatDim}, feat),
                   featdb::Array::FromFloat32("norm_bb", {kBoxes, 6}, bb),
                   featdb::Array::FromFloat32("conf", {kBoxes}, conf)});
  }
  w.Close();
}

// An ITM txt_db as UNITER's prepro writes it: `per_image` captions of each
// image (filler words around word 10 + image), id2len, txt2img (id → image),
// img2txts (image → ids; left out when `with_img2txts` is false), meta.
void WriteTxtDb(const std::string& dir, const std::string& split, int per_image, std::mt19937& gen,
                bool with_img2txts = true, const std::string& prefix = "itm_") {
  featdb::TxtDbWriter w(dir);
  nlohmann::ordered_json id2len = nlohmann::ordered_json::object(), txt2img = nlohmann::ordered_json::object(),
                         img2txts = nlohmann::ordered_json::object();
  std::uniform_int_distribution<int> filler(40, 99), len(2, 5);
  for (int k = 0; k < per_image; ++k) {
    for (int i = 0; i < kImages; ++i) {
      const std::string id = split + std::to_string(k * kImages + i);
      std::vector<int32_t> ids(len(gen));
      for (auto& t : ids) t = filler(gen);
      ids[gen() % ids.size()] = 10 + i;
      featdb::Value ex = featdb::Value::Map();
      ex.Set("input_ids", featdb::Value::IntList(ids));
      ex.Set("img_fname", featdb::Value::Str(Img(i, prefix)));
      w.Put(id, ex);
      id2len[id] = ids.size();
      txt2img[id] = Img(i, prefix);
      img2txts[Img(i, prefix)].push_back(id);
    }
  }
  w.WriteJson("id2len.json", id2len);
  w.WriteJson("txt2img.json", txt2img);
  if (with_img2txts) w.WriteJson("img2txts.json", img2txts);
  w.WriteJson("meta.json", {{"CLS", 101}, {"SEP", 102}, {"MASK", 103}, {"v_range", {10, 100}}, {"bert", "test"}});
  w.Close();
}

class ItmCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::uniter::testing::TempDir("itm_cli"));
    std::mt19937 gen(7);
    WriteImgDb(*root_ + "/img", gen);
    WriteTxtDb(*root_ + "/txt_train", "tr", 4, gen, false);  // ItmRankDataset needs no img2txts
    WriteTxtDb(*root_ + "/txt_val", "va", 1, gen);
    WriteTxtDb(*root_ + "/txt_test", "te", 2, gen);
    WriteTxtDb(*root_ + "/txt_noimg", "no", 1, gen, false);
    // COCO's shape: a second training db (restval) over another image db.
    WriteImgDb(*root_ + "/img_b", gen, "itmb_");
    WriteTxtDb(*root_ + "/txt_restval", "rv", 1, gen, true, "itmb_");
    ::uniter::testing::WriteFile(*root_ + "/model.json",
                                 nlohmann::json{{"vocab_size", 128}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                                                {"num_attention_heads", 4}, {"intermediate_size", 128},
                                                {"hidden_act", "gelu"}, {"hidden_dropout_prob", 0.1},
                                                {"attention_probs_dropout_prob", 0.1},
                                                {"max_position_embeddings", 64}, {"type_vocab_size", 2},
                                                {"initializer_range", 0.02}}
                                     .dump(2));
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }

  // train-itm-flickr-base-8gpu.json's keys, scaled down.
  static nlohmann::json Config() {
    return {{"compressed_db", false}, {"checkpoint", ""}, {"output_dir", *root_ + "/unused"},
            {"max_txt_len", 60}, {"conf_th", 0.2}, {"max_bb", 100}, {"min_bb", 10}, {"num_bb", 36},
            {"train_batch_size", 16}, {"negative_size", 1}, {"inf_minibatch_size", 16}, {"margin", 0.2},
            {"gradient_accumulation_steps", 1}, {"learning_rate", 1e-3}, {"valid_steps", 500},
            {"num_train_steps", 1000}, {"optim", "adamw"}, {"betas", {0.9, 0.98}}, {"dropout", 0.0},
            {"weight_decay", 0.01}, {"grad_norm", 2.0}, {"warmup_steps", 100}, {"seed", 42},
            {"full_val", false}, {"fp16", true}, {"n_workers", 1}, {"pin_mem", true},
            {"train_txt_dbs", {*root_ + "/txt_train"}}, {"train_img_dbs", {*root_ + "/img"}},
            {"val_txt_db", *root_ + "/txt_val"}, {"val_img_db", *root_ + "/img"},
            {"test_txt_db", *root_ + "/txt_test"}, {"test_img_db", *root_ + "/img"},
            {"model_config", *root_ + "/model.json"}};
  }
  static std::string WriteConfig(const std::string& name, const nlohmann::json& j) {
    const std::string path = *root_ + "/" + name + ".json";
    ::uniter::testing::WriteFile(path, j.dump(4));
    return path;
  }
  static ::uniter::testing::CommandResult Uniter(const std::string& args) {
    return ::uniter::testing::Run(Quote(::uniter::testing::UniterBinary()) + " " + args + " 2>&1");
  }
  static ::uniter::testing::CommandResult Py(const std::string& code) {
    return ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " -c " + Quote(code) + " 2>&1");
  }
  // `name=value` lines of a command's output.
  static std::map<std::string, double> Metrics(const std::string& out) {
    std::map<std::string, double> m;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      const size_t eq = line.find('=');
      if (eq != std::string::npos && line.find(' ') == std::string::npos) m[line.substr(0, eq)] = std::stod(line.substr(eq + 1));
    }
    return m;
  }
  // Trains once per process for `steps` (1000: the learning run; the output
  // tests need only a checkpoint), returns its output_dir and keeps its output.
  static const std::string& Trained(int steps, std::string* printed = nullptr) {
    static std::map<int, std::pair<std::string, std::string>> runs;
    auto& run = runs[steps];
    if (run.first.empty()) {
      run.first = *root_ + "/run" + std::to_string(steps);
      nlohmann::json c = Config();
      c["num_train_steps"] = steps;
      c["valid_steps"] = std::min(steps, 500);
      const auto r = Uniter("train itm --config " + Quote(WriteConfig("train" + std::to_string(steps), c)) +
                            " --output_dir " + Quote(run.first) + " -q --threads 1");
      EXPECT_EQ(r.exit_code, 0) << r.out;
      run.second = r.out;
    }
    if (printed) *printed = run.second;
    return run.first;
  }
  std::string Infer(const std::string& ckpt, const std::string& out, const std::string& extra = "") {
    const auto r = Uniter("infer itm --txt_db " + Quote(*root_ + "/txt_test") + " --img_db " + Quote(*root_ + "/img") +
                          " --checkpoint " + Quote(ckpt) + " --model_config " + Quote(*root_ + "/model.json") +
                          " --output_dir " + Quote(out) + " --batch_size 16 -q --threads 1 " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return r.out;
  }

  static std::string* root_;
};
std::string* ItmCli::root_ = nullptr;

TEST_F(ItmCli, TrainLearnsRetrievalFarAboveChance) {
  std::string printed;
  const std::string& out = Trained(1000, &printed);
  const auto m = Metrics(printed);
  ASSERT_TRUE(m.count("test_img_r1") && m.count("test_txt_r1")) << printed;
  // Chance: 1/16 for image retrieval, 1/8 for text retrieval (2 captions per
  // image). 1000 steps reach about 0.85 for both.
  EXPECT_GE(m.at("test_img_r1"), 0.5) << printed;
  EXPECT_GE(m.at("test_txt_r1"), 0.5) << printed;
  for (const char* f : {"/log/hps.json", "/log/model.json", "/ckpt/model_step_1000.pt"})
    EXPECT_TRUE(fs::exists(out + f)) << f;
  for (const char* d : {"/results_val", "/results_test", "/results_train"}) EXPECT_TRUE(fs::is_directory(out + d)) << d;
  const auto hps = nlohmann::json::parse(::uniter::testing::ReadFile(out + "/log/hps.json"));
  EXPECT_EQ(hps.at("negative_size"), 1);
  EXPECT_EQ(hps.at("inf_minibatch_size"), 16);
}

// train-itm-coco-*.json's two training dbs (train + restval, each over its
// own img_db): one ConcatDataset of their texts, each row's text, image and
// negatives from its own db. The second db's images exist only in its own
// img_db (itmb_*), so a row or a negative taken from the wrong db fails the
// run; the log counts both dbs' texts; it learns; hard negatives likewise.
TEST_F(ItmCli, TwoTrainDbsTrainAsOneConcatenation) {
  nlohmann::json c = Config();
  c["train_txt_dbs"] = {*root_ + "/txt_train", *root_ + "/txt_restval"};
  c["train_img_dbs"] = {*root_ + "/img", *root_ + "/img_b"};
  c["num_train_steps"] = 600;
  c["valid_steps"] = 600;
  const std::string out = *root_ + "/run_concat";
  auto r = Uniter("train itm --config " + Quote(WriteConfig("concat", c)) + " --output_dir " + Quote(out) +
                  " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("train itm: 80 texts, 32 images in 2 db(s)"), std::string::npos) << r.out;
  const auto m = Metrics(r.out);
  ASSERT_TRUE(m.count("test_img_r1")) << r.out;
  EXPECT_GE(m.at("test_img_r1"), 0.3) << r.out;  // chance 1/16

  c["hard_neg_size"] = 1;
  c["negative_size"] = 3;
  c["train_batch_size"] = 2;
  c["num_train_steps"] = 10;
  c["valid_steps"] = 10;
  c["train_txt_dbs"] = {*root_ + "/txt_test", *root_ + "/txt_restval"};  // hard negatives read img2txts.json
  r = Uniter("train itm --config " + Quote(WriteConfig("concat_hn", c)) + " --output_dir " +
             Quote(*root_ + "/run_concat_hn") + " -q --threads 1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST_F(ItmCli, InferWritesUnitersScoresAndResultsAsPythonReadsThem) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string ckpt = Trained(100) + "/ckpt/model_step_100.pt";
  const std::string out = *root_ + "/infer";
  const std::string printed = Infer(ckpt, out, "--save-logits " + Quote(out + "/logits.npy"));
  const auto scores = nlohmann::json::parse(::uniter::testing::ReadFile(out + "/scores.json"));
  const std::vector<std::string> keys = {"txt_r1", "txt_r5", "txt_r10", "txt_r_mean", "img_r1",
                                         "img_r5", "img_r10", "img_r_mean", "r_mean"};
  ASSERT_EQ(scores.size(), keys.size());
  const auto m = Metrics(printed);
  for (const auto& k : keys) EXPECT_NEAR(m.at(k), scores.at(k).get<double>(), 1e-6) << k;
  // results.bin through pickle.load, recall through the itm_eval restatement
  // (UNITER's quirk), the logits' fp16 rounding against the pickled matrix.
  const std::string code =
      "import sys, json, pickle, numpy as np; sys.path.insert(0, " + Quote(std::string(UNITER_TRAINER_TEST_DIR)) + ")\n"
      "from uniter_itm_ref import itm_eval\n"
      "s, t, i = pickle.load(open(" + Quote(out + "/results.bin") + ", 'rb'))\n"
      "db = " + Quote(*root_ + "/txt_test") + "\n"
      "t2i = json.load(open(db + '/txt2img.json')); i2t = json.load(open(db + '/img2txts.json'))\n"
      "assert t == list(json.load(open(db + '/id2len.json'))), 'txt_ids order'\n"
      "assert sorted(i) == sorted(i2t), 'img_ids'\n"
      "lg = np.load(" + Quote(out + "/logits.npy") + ")\n"
      "assert lg.dtype == np.float32 and lg.shape == tuple(s.shape), lg.shape\n"
      "assert (lg.astype(np.float16) == s.numpy()).all(), 'logits vs results.bin'\n"
      "print(json.dumps(itm_eval(s.float().numpy(), t, i, t2i, i2t, True)))\n";
  const auto r = Py(code);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto ref = nlohmann::json::parse(r.out);
  for (const auto& k : keys) EXPECT_NEAR(ref.at(k).get<double>(), scores.at(k).get<double>(), 1e-12) << k;
  // eval itm on results.bin: the same numbers; --fix-uniter-quirks drops the row count.
  const auto e = Uniter("eval itm " + Quote(out + "/results.bin") + " " + Quote(*root_ + "/txt_test"));
  ASSERT_EQ(e.exit_code, 0) << e.out;
  const auto em = Metrics(e.out);
  for (const auto& k : keys) EXPECT_NEAR(em.at(k), scores.at(k).get<double>(), 1e-6) << k;
  const auto f = Uniter("eval itm --fix-uniter-quirks " + Quote(out + "/results.bin") + " " + Quote(*root_ + "/txt_test"));
  ASSERT_EQ(f.exit_code, 0) << f.out;
  const auto fixed_ref = Py(std::string(code).replace(code.rfind("True"), 4, "False"));
  ASSERT_EQ(fixed_ref.exit_code, 0) << fixed_ref.out;
  const auto fm = Metrics(f.out);
  const auto fr = nlohmann::json::parse(fixed_ref.out);
  for (const auto& k : keys) EXPECT_NEAR(fm.at(k), fr.at(k).get<double>(), 1e-6) << k;
  for (const char* k : {"img_r1", "img_r5", "img_r10"}) EXPECT_GE(em.at(k), fm.at(k)) << k;  // the quirk only adds
  // A results.bin that Python pickled as inf_itm.py does (a torch.HalfTensor)
  // reads back through `eval itm` to the restatement's numbers.
  const auto w = Py("import pickle, torch, numpy as np\n"
                    "s, t, i = pickle.load(open(" + Quote(out + "/results.bin") + ", 'rb'))\n"
                    "pickle.dump((torch.from_numpy(np.load(" + Quote(out + "/logits.npy") + ")).half(), t, i), open(" +
                    Quote(out + "/py_results.bin") + ", 'wb'))\n");
  ASSERT_EQ(w.exit_code, 0) << w.out;
  const auto p = Uniter("eval itm " + Quote(out + "/py_results.bin") + " " + Quote(*root_ + "/txt_test"));
  ASSERT_EQ(p.exit_code, 0) << p.out;
  const auto pm = Metrics(p.out);
  for (const auto& k : keys) EXPECT_NEAR(pm.at(k), ref.at(k).get<double>(), 1e-6) << k;
}

TEST_F(ItmCli, InferRemakesRankOutputUnlessFixedAndWorksZeroShot) {
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string ckpt = Trained(100) + "/ckpt/model_step_100.pt";
  const std::string dir = *root_ + "/rank";
  fs::create_directories(dir);
  // A finetuned checkpoint whose rank_output differs from itm_output row 1,
  // and a "pretrained" one without rank_output.
  const auto r = Py("import torch\nsd = torch.load(" + Quote(ckpt) + ")\n"
                    "sd['rank_output.weight'] = sd['rank_output.weight'] * -1.0\n"
                    "torch.save(sd, " + Quote(dir + "/changed.pt") + ")\n"
                    "del sd['rank_output.weight'], sd['rank_output.bias']\n"
                    "torch.save(sd, " + Quote(dir + "/pretrained.pt") + ")\n");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto logits = [&](const std::string& ck, const std::string& tag, const std::string& extra) {
    Infer(ck, dir + "/" + tag, "--save-logits " + Quote(dir + "/" + tag + ".npy") + " " + extra);
    const featdb::Array a = featdb::ParseNpy(::uniter::testing::ReadFile(dir + "/" + tag + ".npy"), "logits");
    return a.ToFloat32();
  };
  const auto base = logits(ckpt, "base", "");
  const auto changed_default = logits(dir + "/changed.pt", "changed_default", "");
  const auto changed_fixed = logits(dir + "/changed.pt", "changed_fixed", "--fix-uniter-quirks");
  const auto zero_default = logits(dir + "/pretrained.pt", "zero_default", "");
  const auto zero_fixed = logits(dir + "/pretrained.pt", "zero_fixed", "--fix-uniter-quirks");
  EXPECT_EQ(changed_default, base);  // inf_itm ignored the checkpoint's rank_output
  EXPECT_NE(changed_fixed, base);    // the fix keeps it
  EXPECT_EQ(zero_default, base);     // zero-shot: rank_output from itm_output row 1 ...
  EXPECT_EQ(zero_fixed, base);       // ... in both modes
}

TEST_F(ItmCli, HardNegativeTrainingRuns) {
  nlohmann::json c = Config();
  c["negative_size"] = 7;
  c["hard_neg_size"] = 3;
  c["train_batch_size"] = 4;
  c["num_train_steps"] = 6;
  c["valid_steps"] = 3;
  c["train_txt_dbs"] = {*root_ + "/txt_test"};  // the hard-negative datasets read img2txts.json
  const std::string out = *root_ + "/hn";
  const auto r =
      Uniter("train itm --config " + Quote(WriteConfig("hn", c)) + " --output_dir " + Quote(out) + " -q --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::exists(out + "/ckpt/model_step_6.pt"));
  EXPECT_EQ(Metrics(r.out).count("test_r_mean"), 1u) << r.out;
}

TEST_F(ItmCli, DbWithoutImageListIsOneLine) {
  const auto r = Uniter("infer itm --txt_db " + Quote(*root_ + "/txt_noimg") + " --img_db " + Quote(*root_ + "/img") +
                        " --checkpoint " + Quote(*root_ + "/none.pt") + " --model_config " +
                        Quote(*root_ + "/model.json") + " --output_dir " + Quote(*root_ + "/bad") + " --batch_size 16");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("img2txts.json"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  nlohmann::json c = Config();
  c["val_txt_db"] = *root_ + "/txt_noimg";
  const auto t = Uniter("train itm --config " + Quote(WriteConfig("bad_val", c)) + " --output_dir " +
                        Quote(*root_ + "/bad_train"));
  EXPECT_NE(t.exit_code, 0);
  EXPECT_NE(t.out.find("img2txts.json"), std::string::npos) << t.out;
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 1) << t.out;
  EXPECT_FALSE(fs::exists(*root_ + "/bad_train"));
}

// --dump-batches: each dumped itm_rank_collate batch's ranking loss
// recomputed by the Python restatement of UNITER's model (dump_check.h).
TEST_F(ItmCli, DumpedBatchesRecomputeInUnitersModel) {
  testing::ExpectDumpedLossesMatchUniter(*root_, "itm", WriteConfig("dump_itm", Config()), "");
  // Hard negatives: one image-side then one text-side micro-batch (train_batch_size 2
  // of each pair per update), gt + 3 of 7 kept, UNITER's gather-index quirk included.
  nlohmann::json c = Config();
  c["negative_size"] = 7;
  c["hard_neg_size"] = 3;
  c["train_batch_size"] = 2;
  c["train_txt_dbs"] = {*root_ + "/txt_test"};  // the hard-negative datasets read img2txts.json
  testing::ExpectDumpedLossesMatchUniter(*root_, "itm", WriteConfig("dump_itm_hn", c), "3", "", "itm_hn",
                                         {"batch_000000_i.npz", "batch_000001_t.npz", "batch_000002_i.npz"});
}

// ------------------------------------------------------------- resume and c10d

using ::uniter::trainer::testing::TwoRanks;

// A run killed with SIGKILL once its step-20 state exists, then started again
// with the same command, ends with the uninterrupted run's checkpoint bytes
// and metrics: plain and hard-negative training, with dropout (the torch
// generator is part of the state).
TEST_F(ItmCli, KilledRunsResumeToTheUninterruptedResult) {
  for (const bool hard : {false, true}) {
    nlohmann::json c = Config();
    c["num_train_steps"] = 40;
    c["valid_steps"] = 10;
    c["dropout"] = 0.1;
    c["train_batch_size"] = 8;
    if (hard) {
      c["negative_size"] = 7;
      c["hard_neg_size"] = 3;
      c["train_batch_size"] = 2;
      c["train_txt_dbs"] = {*root_ + "/txt_test"};
    }
    const std::string name = hard ? "resume_hn" : "resume";
    const std::string cmd = "train itm --config " + Quote(WriteConfig(name, c)) + " --threads 1 --output_dir ";
    const std::string a = *root_ + "/" + name + "_a", b = *root_ + "/" + name + "_b";
    const auto ra = Uniter(cmd + Quote(a) + " -q");
    ASSERT_EQ(ra.exit_code, 0) << ra.out;
    const std::string marker = b + "/train_state/state_step_20.json";
    const auto killed = ::uniter::testing::Run(
        Quote(::uniter::testing::UniterBinary()) + " " + cmd + Quote(b) + " -q > /dev/null 2>&1 & pid=$!; " +
        "while [ ! -e " + Quote(marker) + " ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done; " +
        "kill -9 $pid; wait $pid; echo $?");
    ASSERT_EQ(killed.out, "137\n") << "the run was not killed mid-way";
    ASSERT_FALSE(fs::exists(b + "/ckpt/model_step_40.pt")) << "the run finished before the kill";
    const auto rb = Uniter(cmd + Quote(b));
    ASSERT_EQ(rb.exit_code, 0) << rb.out;
    EXPECT_NE(rb.out.find("resuming at step "), std::string::npos) << rb.out;
    EXPECT_TRUE(::uniter::testing::ReadFile(a + "/ckpt/model_step_40.pt") ==
                ::uniter::testing::ReadFile(b + "/ckpt/model_step_40.pt"))
        << (hard ? "hard negatives" : "plain");
    EXPECT_EQ(Metrics(ra.out), Metrics(rb.out));
    EXPECT_EQ(Metrics(ra.out).count("test_r_mean"), 1u) << ra.out;
    if (hard) continue;
    // The state records its number of processes: 2 ranks refuse a 1-process run.
    const auto two = TwoRanks(cmd + Quote(b) + " -q --dist-timeout 60", b + "_two.log");
    EXPECT_NE(two.out, "0 0\n");
    EXPECT_NE(::uniter::testing::ReadFile(b + "_two.log.0").find("trained by 1 process(es), this run has 2"),
              std::string::npos)
        << ::uniter::testing::ReadFile(b + "_two.log.0");
  }
  // A folder holding something else is refused before anything is written.
  const std::string other = *root_ + "/not_a_run";
  fs::create_directories(other);
  ::uniter::testing::WriteFile(other + "/notes.txt", "x");
  const auto r = Uniter("train itm --config " + Quote(WriteConfig("other", Config())) + " --output_dir " +
                        Quote(other) + " -q");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("holds no resumable training state"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(other + "/log"));
}

// issue #11: `uniter infer itm` as 2 Gloo processes writes one process's
// scores.json and results.bin, byte for byte, and prints its R@K; rank 1
// prints nothing.
TEST_F(ItmCli, TwoGlooRanksInferAsOneProcess) {
  const std::string ckpt = Trained(100) + "/ckpt/model_step_100.pt";
  const std::string one = *root_ + "/infer_one", two = *root_ + "/infer_two";
  const std::string printed = Infer(ckpt, one);
  const auto r = TwoRanks("infer itm --txt_db " + Quote(*root_ + "/txt_test") + " --img_db " + Quote(*root_ + "/img") +
                              " --checkpoint " + Quote(ckpt) + " --model_config " + Quote(*root_ + "/model.json") +
                              " --output_dir " + Quote(two) + " --batch_size 16 -q --threads 1",
                          two + ".log");
  ASSERT_EQ(r.out, "0 0\n") << ::uniter::testing::ReadFile(two + ".log.0") << ::uniter::testing::ReadFile(two + ".log.1");
  EXPECT_EQ(::uniter::testing::ReadFile(two + ".log.1"), "");
  const auto m = Metrics(::uniter::testing::ReadFile(two + ".log.0"));
  EXPECT_EQ(m, Metrics(printed));
  EXPECT_EQ(m.count("r_mean"), 1u) << printed;
  for (const char* f : {"/scores.json", "/results.bin"})
    EXPECT_TRUE(::uniter::testing::ReadFile(one + f) == ::uniter::testing::ReadFile(two + f)) << f;
  // Rank 1's score rows (16 texts x 16 images, 1024 bytes) reach rank 0 in
  // 11 chunks of <= 102 bytes (rows and floats split across chunks), as
  // COCO-scale ones would in 64 MiB ones.
  const std::string chunked = *root_ + "/infer_two_chunked";
  ASSERT_EQ(setenv("UNITER_GATHER_CHUNK_BYTES", "102", 1), 0);
  const auto rc = TwoRanks("infer itm --txt_db " + Quote(*root_ + "/txt_test") + " --img_db " + Quote(*root_ + "/img") +
                               " --checkpoint " + Quote(ckpt) + " --model_config " + Quote(*root_ + "/model.json") +
                               " --output_dir " + Quote(chunked) + " --batch_size 16 -q --threads 1",
                           chunked + ".log");
  unsetenv("UNITER_GATHER_CHUNK_BYTES");
  ASSERT_EQ(rc.out, "0 0\n") << ::uniter::testing::ReadFile(chunked + ".log.0")
                             << ::uniter::testing::ReadFile(chunked + ".log.1");
  EXPECT_EQ(Metrics(::uniter::testing::ReadFile(chunked + ".log.0")), Metrics(printed));
  for (const char* f : {"/scores.json", "/results.bin"})
    EXPECT_TRUE(::uniter::testing::ReadFile(one + f) == ::uniter::testing::ReadFile(chunked + f)) << f;
}

// `--amp_dtype bf16` on the CPU: the score matrix within 3% of the largest
// |score| of the fp32 one and not bit-identical (autocast ran), each text's
// best image the same for >= 95% of texts. Measured 2026-12-02 on this
// 100-step model: 1.1% (3.3e-4 on scores up to 0.03: the rank head inf_itm
// re-makes scores small, so bf16's 2^-9 rounding of the hidden states shows
// as a few ulps of the score), all 32 best images the same. 2 Gloo ranks
// under bf16 write one bf16 process's results.bin byte for byte (every
// forward has the same rows).
TEST_F(ItmCli, InferBf16OnTheCpuIsNearFp32AndShardsAsOneProcess) {
  UNITER_REQUIRE_PYTHON_MODULE("numpy");
  const std::string ckpt = Trained(100) + "/ckpt/model_step_100.pt";
  const std::string dir = *root_ + "/bf16";
  for (const char* t : {"fp32", "bf16"})
    Infer(ckpt, dir + "/" + t, "--device cpu --amp_dtype " + std::string(t) + " --save-logits " +
                                   Quote(dir + "/" + t + ".npy"));
  const testing::LogitsDiff d = testing::CompareLogits(dir + "/fp32.npy", dir + "/bf16.npy");
  std::fprintf(stderr, "itm bf16 vs fp32: %lld texts, max |diff| %.6g, score scale %.6g (%.4f of it), best image agrees %.4f\n",
               static_cast<long long>(d.rows), d.max_abs_diff, d.scale, d.max_abs_diff / d.scale, d.argmax_agree);
  EXPECT_EQ(d.rows, 2 * kImages);
  EXPECT_FALSE(d.identical) << "bf16 scores equal fp32's bit for bit: autocast did not run";
  EXPECT_GT(d.scale, 0.0);
  EXPECT_LE(d.max_abs_diff, 0.03 * d.scale);
  EXPECT_GE(d.argmax_agree, 0.95);

  const std::string two = dir + "/two";
  const auto r = TwoRanks("infer itm --txt_db " + Quote(*root_ + "/txt_test") + " --img_db " + Quote(*root_ + "/img") +
                              " --checkpoint " + Quote(ckpt) + " --model_config " + Quote(*root_ + "/model.json") +
                              " --output_dir " + Quote(two) + " --batch_size 16 -q --threads 1 --device cpu "
                              "--amp_dtype bf16",
                          two + ".log");
  ASSERT_EQ(r.out, "0 0\n") << ::uniter::testing::ReadFile(two + ".log.0") << ::uniter::testing::ReadFile(two + ".log.1");
  for (const char* f : {"/scores.json", "/results.bin"})
    EXPECT_TRUE(::uniter::testing::ReadFile(dir + "/bf16" + f) == ::uniter::testing::ReadFile(two + f)) << f;
}

// 2 Gloo ranks with grad_reduce sum take the micro-batches one process takes
// accumulating 2: the same checkpoint bytes and metrics; only rank 0 writes.
// Hard negatives: 2 ranks of train_batch_size 2 (mean) against one process
// of 4 — the same terms summed in another order: weights within 1e-6 (they
// move by ~5e-4 in these steps; a zero-gradient bias rules out a relative test).
TEST_F(ItmCli, TwoGlooRanksTrainAsOneProcess) {
  for (const bool hard : {false, true}) {
    nlohmann::json c = Config();
    c["num_train_steps"] = 12;
    c["valid_steps"] = 6;
    c["train_batch_size"] = 8;
    c["grad_reduce"] = "sum";
    if (hard) {
      c["negative_size"] = 7;
      c["hard_neg_size"] = 3;
      c["grad_reduce"] = "mean";
      c["train_batch_size"] = 2;
      c["train_txt_dbs"] = {*root_ + "/txt_test"};
    }
    const std::string name = hard ? "dist_hn" : "dist";
    nlohmann::json c1 = c;
    if (hard) c1["train_batch_size"] = 4;
    else c1["gradient_accumulation_steps"] = 2;
    const std::string one = *root_ + "/" + name + "_one", two = *root_ + "/" + name + "_two";
    const auto r1 = Uniter("train itm --config " + Quote(WriteConfig(name + "1", c1)) + " --output_dir " +
                           Quote(one) + " -q --threads 1");
    ASSERT_EQ(r1.exit_code, 0) << r1.out;
    const auto r2 = TwoRanks("train itm --config " + Quote(WriteConfig(name + "2", c)) + " --output_dir " +
                                 Quote(two) + " -q --threads 1 --dist-timeout 120",
                             two + ".log");
    ASSERT_EQ(r2.out, "0 0\n") << ::uniter::testing::ReadFile(two + ".log.0")
                               << ::uniter::testing::ReadFile(two + ".log.1");
    EXPECT_EQ(::uniter::testing::ReadFile(two + ".log.1"), "");
    const std::string ckpt = "/ckpt/model_step_12.pt";
    if (!hard) {
      EXPECT_TRUE(::uniter::testing::ReadFile(one + ckpt) == ::uniter::testing::ReadFile(two + ckpt));
      EXPECT_EQ(Metrics(::uniter::testing::ReadFile(two + ".log.0")), Metrics(r1.out));
      continue;
    }
    UNITER_REQUIRE_PYTHON_MODULE("torch");
    const auto py = ::uniter::testing::Run(
        Quote(::uniter::testing::Python()) + " -c " +
        Quote("import sys, torch; a, b = (torch.load(p) for p in sys.argv[1:]); assert a.keys() == b.keys(); "
              "print(max((a[k].double() - b[k].double()).abs().max().item() for k in a))") +
        " " + Quote(one + ckpt) + " " + Quote(two + ckpt) + " 2>&1");
    ASSERT_EQ(py.exit_code, 0) << py.out;
    EXPECT_LE(std::stod(py.out), 1e-6) << "largest weight difference " << py.out;
  }
}

}  // namespace
}  // namespace uniter::trainer
