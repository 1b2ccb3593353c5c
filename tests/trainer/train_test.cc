// `uniter train nlvr2` end to end: on generated NLVR2-shaped data whose label
// follows from a word and the images' features, a tiny UNITER learns it
// (dev accuracy checked by this test against the labels it generated), the
// output_dir holds UNITER's layout (hps.json, model.json, checkpoints, results,
// TensorBoard scalars read back by PyPI tensorboard), and `uniter eval nlvr2`
// agrees with the logged accuracy. Bad input: one line, nothing written.
// VE and VQA (soft targets, ans2label) learn too; `uniter infer nlvr2|vqa|ve`
// reproduces validation's predictions and `uniter eval ve` a Python
// restatement of the accuracy.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "featdb/img_db.h"
#include "featdb/txt_db.h"
#include "tests/test_util.h"
#include "tests/trainer/dump_check.h"
#include "tests/trainer/train_test_data.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;

using testing::kColors;
using testing::kImages;
using testing::kVqaAnswers;
using testing::WriteImgDb;
using testing::WriteTxtDb;
using testing::WriteVqaTxtDb;

class TrainNlvr2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::uniter::testing::TempDir("train_nlvr2"));
    std::mt19937 gen(12345);
    WriteImgDb(*root_ + "/img", gen);
    WriteTxtDb(*root_ + "/txt_train", "train", 2000, gen);
    dev_ = new std::map<std::string, bool>(WriteTxtDb(*root_ + "/txt_dev", "dev", 160, gen));
    WriteTxtDb(*root_ + "/ve_train", "train", 1000, gen, /*ve=*/true);
    ve_dev_ = new std::map<std::string, bool>(WriteTxtDb(*root_ + "/ve_dev", "dev", 160, gen, /*ve=*/true));
    WriteVqaTxtDb(*root_ + "/vqa_train", 100000, 1000, gen);
    vqa_dev_ = new std::map<std::string, std::map<int, double>>(WriteVqaTxtDb(*root_ + "/vqa_dev", 200000, 160, gen));
    nlohmann::json ans2label = nlohmann::json::object();
    for (size_t i = 0; i < kVqaAnswers.size(); ++i) ans2label[kVqaAnswers[i]] = i;
    ::uniter::testing::WriteFile(*root_ + "/ans2label.json", ans2label.dump());
    ::uniter::testing::WriteFile(*root_ + "/model.json", nlohmann::json{{"vocab_size", 128},
                                                                         {"hidden_size", 64},
                                                                         {"num_hidden_layers", 2},
                                                                         {"num_attention_heads", 4},
                                                                         {"intermediate_size", 128},
                                                                         {"hidden_act", "gelu"},
                                                                         {"hidden_dropout_prob", 0.1},
                                                                         {"attention_probs_dropout_prob", 0.1},
                                                                         {"max_position_embeddings", 64},
                                                                         {"type_vocab_size", 2},
                                                                         {"initializer_range", 0.02}}
                                                                             .dump(2));
    std::string annotations;
    for (const auto& [id, label] : *dev_)
      annotations += nlohmann::json{{"identifier", id}, {"label", label ? "True" : "False"}}.dump() + "\n";
    ::uniter::testing::WriteFile(*root_ + "/dev.json", annotations);
  }
  static void TearDownTestSuite() {
    delete root_;
    delete dev_;
    delete ve_dev_;
    delete vqa_dev_;
    root_ = nullptr;
    dev_ = nullptr;
  }

  // UNITER's train-nlvr2-base-1gpu.json layout, scaled down.
  static nlohmann::json Config() {
    return {{"train_txt_db", *root_ + "/txt_train"}, {"train_img_db", *root_ + "/img"},
            {"val_txt_db", *root_ + "/txt_dev"},     {"val_img_db", *root_ + "/img"},
            {"compressed_db", false},                {"model_config", *root_ + "/model.json"},
            {"checkpoint", ""},                      {"model", "paired-attn"},
            {"use_img_type", true},                  {"output_dir", *root_ + "/unused"},
            {"max_txt_len", 60},                     {"conf_th", 0.2},
            {"max_bb", 100},                         {"min_bb", 10},
            {"num_bb", 36},                          {"train_batch_size", 1200},
            {"val_batch_size", 4000},                {"gradient_accumulation_steps", 1},
            {"learning_rate", 3e-3},                 {"valid_steps", 100},
            {"num_train_steps", 300},                {"optim", "adamw"},
            {"betas", {0.9, 0.98}},                  {"dropout", 0.0},
            {"weight_decay", 0.01},                  {"grad_norm", 2.0},
            {"warmup_steps", 30},                    {"seed", 77},
            {"fp16", true},                          {"n_workers", 1},
            {"pin_mem", true}};
  }

  static std::string WriteConfig(const std::string& name, const nlohmann::json& j) {
    const std::string path = *root_ + "/" + name + ".json";
    ::uniter::testing::WriteFile(path, j.dump(4));
    return path;
  }

  // Runs `uniter <args>`; stdout and stderr together.
  static ::uniter::testing::CommandResult Uniter(const std::string& args) {
    return ::uniter::testing::Run(Quote(::uniter::testing::UniterBinary()) + " " + args + " 2>&1");
  }

  static std::string* root_;
  static std::map<std::string, bool>* dev_;
  static std::map<std::string, bool>* ve_dev_;
  static std::map<std::string, std::map<int, double>>* vqa_dev_;
};
std::map<std::string, std::map<int, double>>* TrainNlvr2::vqa_dev_ = nullptr;
std::map<std::string, bool>* TrainNlvr2::ve_dev_ = nullptr;
std::string* TrainNlvr2::root_ = nullptr;
std::map<std::string, bool>* TrainNlvr2::dev_ = nullptr;

double AccuracyOf(const std::string& csv, const std::map<std::string, bool>& labels, size_t* rows) {
  std::istringstream in(csv);
  std::string line;
  size_t correct = 0;
  *rows = 0;
  while (std::getline(in, line)) {
    const size_t comma = line.find(',');
    const std::string id = line.substr(0, comma), pred = line.substr(comma + 1);
    EXPECT_TRUE(pred == "True" || pred == "False") << line;
    correct += labels.at(id) == (pred == "True");
    ++*rows;
  }
  return *rows ? static_cast<double>(correct) / *rows : 0;
}

TEST_F(TrainNlvr2, LearnsTheWordImageRuleAndWritesUnitersOutputs) {
  const std::string out = *root_ + "/run";
  const auto t0 = std::chrono::steady_clock::now();
  // CLI overrides: both spellings of a key.
  const auto r = Uniter("train nlvr2 --config " + Quote(WriteConfig("train", Config())) + " --output_dir " +
                        Quote(out) + " --valid-steps 125 --threads 1 --quiet");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::fprintf(stderr, "uniter train nlvr2: %.1f s: %s", secs, r.out.c_str());

  // Validation at 125, 250 and at the end (300 is no multiple of 125), as train_nlvr2.py.
  for (int step : {125, 250, 300}) {
    EXPECT_TRUE(fs::exists(out + "/ckpt/model_step_" + std::to_string(step) + ".pt")) << step;
    EXPECT_TRUE(fs::exists(out + "/results/val_results_" + std::to_string(step) + "_rank0.csv")) << step;
  }
  size_t rows = 0;
  const std::string results = out + "/results/val_results_300_rank0.csv";
  const double acc = AccuracyOf(::uniter::testing::ReadFile(results), *dev_, &rows);
  EXPECT_EQ(rows, dev_->size());
  EXPECT_GE(acc, 0.9) << "dev accuracy after 300 steps";
  std::fprintf(stderr, "dev accuracy %.4f (%zu examples) in %.1f s\n", acc, rows, secs);

  // hps.json: the run's options, the CLI override included; model.json: the model config.
  const auto hps = nlohmann::json::parse(::uniter::testing::ReadFile(out + "/log/hps.json"));
  EXPECT_EQ(hps.at("valid_steps"), 125);
  EXPECT_EQ(hps.at("model"), "paired-attn");
  EXPECT_EQ(hps.at("num_bb"), 36);
  EXPECT_EQ(hps.at("val_batch_size"), 4000);
  EXPECT_EQ(hps.at("output_dir"), out);
  EXPECT_EQ(nlohmann::json::parse(::uniter::testing::ReadFile(out + "/log/model.json")),
            nlohmann::json::parse(::uniter::testing::ReadFile(*root_ + "/model.json")));

  // `uniter eval nlvr2` on the written results gives the accuracy the loop logged.
  const auto ev = Uniter("eval nlvr2 " + Quote(results) + " " + Quote(*root_ + "/dev.json"));
  ASSERT_EQ(ev.exit_code, 0) << ev.out;
  const size_t at = ev.out.find("accuracy=");
  ASSERT_NE(at, std::string::npos) << ev.out;
  EXPECT_NEAR(std::stod(ev.out.substr(at + 9)), acc, 1e-12);
  const size_t logged = r.out.find("val_acc=");
  ASSERT_NE(logged, std::string::npos) << r.out;
  EXPECT_NEAR(std::stod(r.out.substr(logged + 8)), acc, 1e-6);

  // `uniter infer nlvr2` with the saved checkpoint predicts what validation did;
  // numpy reads the logits, whose argmax gives results.csv's answers.
  const std::string inf = *root_ + "/infer";
  const auto ir = Uniter("infer nlvr2 --txt_db " + Quote(*root_ + "/txt_dev") + " --img-db " + Quote(*root_ + "/img") +
                         " --checkpoint " + Quote(out + "/ckpt/model_step_300.pt") + " --model_config " +
                         Quote(out + "/log/model.json") + " --config " + Quote(out + "/log/hps.json") +
                         " --output_dir " + Quote(inf) + " --save-logits " + Quote(inf + "/logits.npy") +
                         " --threads 1 --quiet");
  ASSERT_EQ(ir.exit_code, 0) << ir.out;
  auto lines = [](const std::string& text) {
    std::multiset<std::string> set;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) set.insert(l);
    return set;
  };
  const std::string inferred = ::uniter::testing::ReadFile(inf + "/results.csv");
  EXPECT_EQ(lines(inferred), lines(::uniter::testing::ReadFile(results)));
  const auto np = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import numpy as np, sys; a = np.load(sys.argv[1]); print(a.dtype, a.shape, "
            "' '.join('True' if r[1] > r[0] else 'False' for r in a))") +
      " " + Quote(inf + "/logits.npy"));
  ASSERT_EQ(np.exit_code, 0);
  std::string expected = "float32 (" + std::to_string(dev_->size()) + ", 2)";
  std::istringstream csv_in(inferred);
  for (std::string l; std::getline(csv_in, l);) expected += " " + l.substr(l.find(',') + 1);
  EXPECT_EQ(np.out, expected + "\n");

  // inf_nlvr2.py's form, `--train_dir D --ckpt N`, finds the same files
  // (model.json, hps.json for the head) and writes the same bytes.
  const auto byd = Uniter("infer nlvr2 --txt_db " + Quote(*root_ + "/txt_dev") + " --img-db " + Quote(*root_ + "/img") +
                          " --train_dir " + Quote(out) + " --ckpt 300 --output_dir " + Quote(inf + "_dir") +
                          " --threads 1 --quiet");
  ASSERT_EQ(byd.exit_code, 0) << byd.out;
  EXPECT_EQ(::uniter::testing::ReadFile(inf + "_dir/results.csv"), inferred);
  // A step the run never saved, or half of the pair: one line naming what is missing.
  for (const std::string& args : {" --train_dir " + Quote(out) + " --ckpt 7 --output_dir " + Quote(inf + "_bad"),
                                  " --train_dir " + Quote(out) + " --output_dir " + Quote(inf + "_bad")}) {
    const auto bad = Uniter("infer nlvr2 --txt_db " + Quote(*root_ + "/txt_dev") + " --img-db " +
                            Quote(*root_ + "/img") + args + " --threads 1 --quiet");
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.out.find(args.find("--ckpt") == std::string::npos ? "--ckpt" : "model_step_7.pt"),
              std::string::npos) << bad.out;
    EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
    EXPECT_FALSE(fs::exists(inf + "_bad"));
  }

  // TensorBoard scalars under UNITER's tags, read by PyPI tensorboard.
  if (!::uniter::testing::PythonHas("tensorboard")) GTEST_SKIP() << "reference Python lacks tensorboard";
  std::string events;
  for (const auto& e : fs::directory_iterator(out + "/log"))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events = e.path().string();
  ASSERT_FALSE(events.empty());
  const auto tb = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                         Quote(std::string(UNITER_TRAINER_TEST_DIR) + "/read_events.py") + " " +
                                         Quote(events));
  ASSERT_EQ(tb.exit_code, 0) << tb.out;
  const auto j = nlohmann::json::parse(tb.out);
  std::map<std::string, int> count;
  double last_acc = -1;
  for (const auto& s : j.at("scalars")) {
    ++count[s[0].get<std::string>()];
    if (s[0] == "valid/val_acc" && s[1] == 300) last_acc = s[2].get<double>();
  }
  EXPECT_EQ(count["lr"], 300);
  EXPECT_EQ(count["loss"], 300);
  EXPECT_EQ(count["grad_norm"], 300);
  EXPECT_EQ(count["perf/ex_per_s"], 3);
  EXPECT_EQ(count["valid/val_acc"], 3);
  EXPECT_EQ(count["valid/val_loss"], 3);
  EXPECT_NEAR(last_acc, acc, 1e-6);  // TensorBoard stores float32
}

TEST_F(TrainNlvr2, VeLearnsTooAndWritesUnitersVeResults) {
  const std::string out = *root_ + "/ve_run";
  auto c = Config();
  c.erase("model");
  c.erase("use_img_type");
  c["train_txt_db"] = *root_ + "/ve_train";
  c["val_txt_db"] = *root_ + "/ve_dev";
  c["num_train_steps"] = 200;
  c["warmup_steps"] = 20;
  const auto r = Uniter("train ve --config " + Quote(WriteConfig("train_ve", c)) + " --output-dir " + Quote(out) +
                        " --threads 1 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::fprintf(stderr, "uniter train ve: %s", r.out.c_str());
  const auto res = nlohmann::json::parse(::uniter::testing::ReadFile(out + "/results/val_results_200_rank0.json"));
  ASSERT_EQ(res.size(), ve_dev_->size());
  size_t correct = 0;
  for (const auto& [id, label] : *ve_dev_) correct += res.at(id) == (label ? "entailment" : "contradiction");
  const double acc = static_cast<double>(correct) / ve_dev_->size();
  std::fprintf(stderr, "VE dev accuracy %.4f\n", acc);
  EXPECT_GE(acc, 0.9);
  const size_t logged = r.out.find("val_acc=");
  ASSERT_NE(logged, std::string::npos) << r.out;
  EXPECT_NEAR(std::stod(r.out.substr(logged + 8)), acc, 1e-6);  // score at argmax = 1 iff correct
  EXPECT_TRUE(fs::exists(out + "/ckpt/model_step_200.pt"));

  // `uniter infer ve` reproduces validation's predictions ({pairID: label}, db order);
  // numpy reads the [N, 3] logits, whose argmax names the same labels.
  const std::string inf = *root_ + "/ve_infer";
  const auto ir = Uniter("infer ve --txt_db " + Quote(*root_ + "/ve_dev") + " --img_db " + Quote(*root_ + "/img") +
                         " --checkpoint " + Quote(out + "/ckpt/model_step_200.pt") + " --model_config " +
                         Quote(out + "/log/model.json") + " --config " + Quote(out + "/log/hps.json") +
                         " --output_dir " + Quote(inf) + " --save-logits " + Quote(inf + "/logits.npy") +
                         " --threads 1 --quiet");
  ASSERT_EQ(ir.exit_code, 0) << ir.out;
  const std::string inferred_text = ::uniter::testing::ReadFile(inf + "/results.json");
  const auto inferred = nlohmann::ordered_json::parse(inferred_text);
  EXPECT_EQ(nlohmann::json::parse(inferred_text), res);
  std::string expected = "float32 (" + std::to_string(ve_dev_->size()) + ", 3)";
  for (const auto& [id, label] : inferred.items()) expected += " " + label.get<std::string>();
  const auto np = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import numpy as np, sys; a = np.load(sys.argv[1]); names = ['contradiction', 'entailment', 'neutral']; "
            "print(a.dtype, a.shape, ' '.join(names[i] for i in a.argmax(1)))") +
      " " + Quote(inf + "/logits.npy"));
  ASSERT_EQ(np.exit_code, 0) << np.out;
  EXPECT_EQ(np.out, expected + "\n");

  // `uniter eval ve` against SNLI-VE-style annotations (one gold label
  // flipped to neutral so that a miss shows) and against the txt_db's
  // targets, checked by a Python restatement of the accuracy.
  std::string annotations;
  for (const auto& [id, label] : *ve_dev_) {
    const bool flip = id == ve_dev_->begin()->first;
    annotations += nlohmann::json{{"pairID", id}, {"gold_label", flip ? "neutral" : label ? "entailment" : "contradiction"}}
                       .dump() + "\n";
  }
  const std::string jsonl = *root_ + "/snli_ve_dev.jsonl";
  ::uniter::testing::WriteFile(jsonl, annotations);
  const auto ref = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import json, sys; res = json.load(open(sys.argv[1])); "
            "gold = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]; "
            "c = sum(res[g['pairID']] == g['gold_label'] for g in gold); "
            "print('accuracy=%s\\nexamples=%d\\ncorrect=%d' % (c / len(gold), len(gold), c))") +
      " " + Quote(inf + "/results.json") + " " + Quote(jsonl));
  ASSERT_EQ(ref.exit_code, 0) << ref.out;
  const auto ev = Uniter("eval ve " + Quote(inf + "/results.json") + " " + Quote(jsonl));
  ASSERT_EQ(ev.exit_code, 0) << ev.out;
  EXPECT_EQ(ev.out, ref.out);
  const auto ev_db = Uniter("eval ve " + Quote(inf + "/results.json") + " " + Quote(*root_ + "/ve_dev"));
  ASSERT_EQ(ev_db.exit_code, 0) << ev_db.out;
  ASSERT_EQ(ev_db.out.rfind("accuracy=", 0), 0u) << ev_db.out;
  EXPECT_NEAR(std::stod(ev_db.out.substr(9)), acc, 1e-12);  // the test's own labels, no flip
  EXPECT_NE(ev_db.out.find("\nexamples=" + std::to_string(ve_dev_->size()) + "\n"), std::string::npos) << ev_db.out;
  std::fprintf(stderr, "uniter eval ve: %s", ev.out.c_str());
}

TEST_F(TrainNlvr2, VqaLearnsAndWritesUnitersVqaResults) {
  const std::string out = *root_ + "/vqa_run";
  auto c = Config();
  // train-vqa-base-4gpu.json's layout: lists of train dbs, lr_mul for the head.
  for (const char* k : {"model", "use_img_type", "train_txt_db", "train_img_db"}) c.erase(k);
  c["train_txt_dbs"] = {*root_ + "/vqa_train"};
  c["train_img_dbs"] = {*root_ + "/img"};
  c["val_txt_db"] = *root_ + "/vqa_dev";
  c["ans2label"] = *root_ + "/ans2label.json";
  c["lr_mul"] = 10.0;
  c["num_train_steps"] = 300;
  c["warmup_steps"] = 30;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = Uniter("train vqa --config " + Quote(WriteConfig("train_vqa", c)) + " --output_dir " + Quote(out) +
                        " --threads 1 --quiet");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::fprintf(stderr, "uniter train vqa: %.1f s: %s", secs, r.out.c_str());

  // results/results_{step}_rank0.json {qid: answer}; the VQA score is the
  // target score at the predicted answer, averaged (compute_score_with_logits).
  const auto res = nlohmann::json::parse(::uniter::testing::ReadFile(out + "/results/results_300_rank0.json"));
  ASSERT_EQ(res.size(), vqa_dev_->size());
  double score = 0;
  for (const auto& [qid, target] : *vqa_dev_) {
    const std::string answer = res.at(qid).get<std::string>();
    const auto it = std::find(kVqaAnswers.begin(), kVqaAnswers.end(), answer);
    ASSERT_NE(it, kVqaAnswers.end()) << answer;
    const auto hit = target.find(static_cast<int>(it - kVqaAnswers.begin()));
    score += hit == target.end() ? 0.0 : hit->second;
  }
  score /= static_cast<double>(vqa_dev_->size());
  std::fprintf(stderr, "VQA dev score %.4f in %.1f s (a constant answer scores <= 0.33)\n", score, secs);
  EXPECT_GE(score, 0.9);
  const size_t logged = r.out.find("val_acc=");
  ASSERT_NE(logged, std::string::npos) << r.out;
  EXPECT_NEAR(std::stod(r.out.substr(logged + 8)), score, 1e-6);

  // `uniter infer vqa`: inf_vqa.py's [{answer, question_id}] in db order,
  // the same answers as validation; numpy's argmax over the logits agrees.
  const std::string inf = *root_ + "/vqa_infer";
  const auto ir = Uniter("infer vqa --txt_db " + Quote(*root_ + "/vqa_dev") + " --img_db " + Quote(*root_ + "/img") +
                         " --checkpoint " + Quote(out + "/ckpt/model_step_300.pt") + " --model_config " +
                         Quote(out + "/log/model.json") + " --config " + Quote(out + "/log/hps.json") +
                         " --output_dir " + Quote(inf) + " --save-logits " + Quote(inf + "/logits.npy") +
                         " --threads 1 --quiet");
  ASSERT_EQ(ir.exit_code, 0) << ir.out;
  const auto inferred =
      nlohmann::json::parse(::uniter::testing::ReadFile(inf + "/results_test/results_300_all.json"));
  ASSERT_TRUE(inferred.is_array());
  ASSERT_EQ(inferred.size(), vqa_dev_->size());
  auto qid = vqa_dev_->begin();
  std::string expected = "float32 (" + std::to_string(vqa_dev_->size()) + ", " + std::to_string(kVqaAnswers.size()) + ")";
  for (const auto& row : inferred) {
    ASSERT_TRUE(row.at("question_id").is_number_integer()) << row;
    EXPECT_EQ(std::to_string(row.at("question_id").get<int64_t>()), qid->first);
    EXPECT_EQ(row.at("answer"), res.at(qid->first)) << qid->first;
    expected += " " + row.at("answer").get<std::string>();
    ++qid;
  }
  const auto np = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import json, numpy as np, sys; a = np.load(sys.argv[1]); l2a = {v: k for k, v in json.load(open(sys.argv[2])).items()}; "
            "print(a.dtype, a.shape, ' '.join(l2a[i] for i in a.argmax(1)))") +
      " " + Quote(inf + "/logits.npy") + " " + Quote(*root_ + "/ans2label.json"));
  ASSERT_EQ(np.exit_code, 0) << np.out;
  EXPECT_EQ(np.out, expected + "\n");

  // train_vqa.py's ckpt/ans2label.json is json.dump of the answers it read;
  // inf_vqa.py's form (the run's folder) finds them there without --config.
  const auto dumped = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import json, sys; sys.stdout.write(json.dumps(json.load(open(sys.argv[1]))))") + " " +
      Quote(*root_ + "/ans2label.json"));
  ASSERT_EQ(dumped.exit_code, 0) << dumped.out;
  EXPECT_EQ(::uniter::testing::ReadFile(out + "/ckpt/ans2label.json"), dumped.out);
  const auto byd = Uniter("infer vqa --txt_db " + Quote(*root_ + "/vqa_dev") + " --img_db " + Quote(*root_ + "/img") +
                          " --train_dir " + Quote(out) + " --ckpt 300 --threads 1 --quiet");
  ASSERT_EQ(byd.exit_code, 0) << byd.out;
  EXPECT_EQ(::uniter::testing::ReadFile(out + "/results_test/results_300_all.json"),
            ::uniter::testing::ReadFile(inf + "/results_test/results_300_all.json"));

  // Without the run's ans2label the head has 3129 answers: one line naming
  // the mismatched key; non-integer ids (a VE db) likewise.
  for (const auto& [db, needle] : {std::pair<std::string, std::string>{"vqa_dev", "vqa_output.3.weight"},
                                   std::pair<std::string, std::string>{"ve_dev", "question_id"}}) {
    const std::string config = db == "ve_dev" ? " --config " + Quote(out + "/log/hps.json") : "";
    const auto bad = Uniter("infer vqa --txt_db " + Quote(*root_ + "/" + db) + " --img_db " + Quote(*root_ + "/img") +
                            " --checkpoint " + Quote(out + "/ckpt/model_step_300.pt") + " --model_config " +
                            Quote(out + "/log/model.json") + config + " --output_dir " + Quote(*root_ + "/vqa_bad") +
                            " --threads 1 --quiet");
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.out.find(needle), std::string::npos) << bad.out;
    if (db == "vqa_dev") {
      EXPECT_NE(bad.out.find("--ans2label"), std::string::npos) << bad.out;  // the hint
    }
    EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
  }
}

// Same seed → the same weights and predictions: bit for bit whatever the
// loader's thread count; LibTorch's intra-op threads change float summation
// order, so across those the weights (all O(1)) agree within 1e-5 absolute (read by
// Python torch; measured: 1.2e-7 after 20 steps).
TEST_F(TrainNlvr2, SameSeedGivesTheSameCheckpoint) {
  std::vector<std::string> dirs;
  for (const char* threads : {"--threads 1 --n_workers 1", "--threads 1 --n_workers 3", "--threads 2 --n_workers 2"}) {
    const std::string out = *root_ + "/repro_" + std::to_string(dirs.size());
    const auto r = Uniter("train nlvr2 --config " + Quote(WriteConfig("repro", Config())) + " --output_dir " +
                          Quote(out) + " --num_train_steps 20 --valid_steps 20 --dropout 0.1 --quiet " + threads);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    dirs.push_back(out);
  }
  auto ckpt = [&](int i) { return ::uniter::testing::ReadFile(dirs[i] + "/ckpt/model_step_20.pt"); };
  EXPECT_FALSE(ckpt(0).empty());
  EXPECT_TRUE(ckpt(0) == ckpt(1)) << "checkpoints differ between loader thread counts";
  EXPECT_EQ(::uniter::testing::ReadFile(dirs[0] + "/results/val_results_20_rank0.csv"),
            ::uniter::testing::ReadFile(dirs[1] + "/results/val_results_20_rank0.csv"));
  if (!::uniter::testing::PythonHas("torch")) GTEST_SKIP() << "reference Python lacks torch";
  const auto py = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import sys, torch; a, b = (torch.load(p) for p in sys.argv[1:]); assert a.keys() == b.keys(); "
            "print(max((a[k].double() - b[k].double()).abs().max().item() for k in a))") +
      " " + Quote(dirs[0] + "/ckpt/model_step_20.pt") + " " + Quote(dirs[2] + "/ckpt/model_step_20.pt"));
  ASSERT_EQ(py.exit_code, 0) << py.out;
  EXPECT_LE(std::stod(py.out), 1e-5) << "largest weight difference, 1 vs 2 LibTorch threads";
}

// issue #10 §4: a run killed with SIGKILL after its step-20 state exists, then
// rerun with the same command, ends bit-identical to an uninterrupted run
// (checkpoints and results byte for byte; dropout on, so the torch generator
// is resumed too; two micro-batches per step, so epochs end mid-step). A
// changed option is refused naming the key, leaving the state as it was; a
// finished run rerun changes nothing.
TEST_F(TrainNlvr2, KilledRunResumesToTheUninterruptedResult) {
  const std::string config = Quote(WriteConfig("resume", Config()));
  const std::string common = " --num_train_steps 60 --valid_steps 20 --dropout 0.1 --gradient_accumulation_steps 2"
                             " --threads 1";
  auto train = [&](const std::string& out, const std::string& extra = " --quiet") {
    return "train nlvr2 --config " + config + " --output_dir " + Quote(out) + common + extra;
  };
  const std::string a = *root_ + "/resume_a", b = *root_ + "/resume_b";
  const auto ra = Uniter(train(a));
  ASSERT_EQ(ra.exit_code, 0) << ra.out;

  // Start B in the background, SIGKILL it once the step-20 state is complete.
  const std::string marker = b + "/train_state/state_step_20.json";
  const auto killed = ::uniter::testing::Run(
      "exec 2>/dev/null; " + Quote(::uniter::testing::UniterBinary()) + " " + train(b) + " >/dev/null & pid=$!; " +
      "while [ ! -e " + Quote(marker) + " ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; " +
      "kill -9 $pid; wait $pid; echo $?");
  ASSERT_EQ(killed.out, "137\n") << "the run was not killed mid-way";
  ASSERT_TRUE(fs::exists(marker));
  ASSERT_FALSE(fs::exists(b + "/ckpt/model_step_60.pt")) << "the run finished before the kill";

  // Resuming with another learning rate: one line naming the key, nothing changed.
  auto listing = [](const std::string& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) files[e.path().string()] = ::uniter::testing::ReadFile(e.path().string());
    return files;
  };
  const auto before = listing(b);
  const auto changed = Uniter(train(b, " --quiet --learning_rate 1e-3"));
  EXPECT_NE(changed.exit_code, 0);
  EXPECT_NE(changed.out.find("'learning_rate'"), std::string::npos) << changed.out;
  EXPECT_EQ(std::count(changed.out.begin(), changed.out.end(), '\n'), 1) << changed.out;
  EXPECT_TRUE(listing(b) == before) << "a refused resume changed output_dir";

  // The same command again (other loader threads are harmless): resumes and finishes.
  const auto rb = Uniter(train(b, " --n_workers 2"));
  ASSERT_EQ(rb.exit_code, 0) << rb.out;
  EXPECT_NE(rb.out.find("resuming at step 20 from " + b + "/train_state/state_step_20.pt"), std::string::npos)
      << rb.out;
  auto summary = [](const std::string& out) {  // "60 steps, val_acc=... val_loss=..."
    const size_t at = out.rfind(": 60 steps");
    return at == std::string::npos ? out : out.substr(at, out.find(" (", at) - at);
  };
  EXPECT_EQ(summary(ra.out), summary(rb.out));
  for (const char* step : {"20", "40", "60"}) {
    const std::string ckpt = std::string("/ckpt/model_step_") + step + ".pt";
    const std::string csv = std::string("/results/val_results_") + step + "_rank0.csv";
    EXPECT_FALSE(::uniter::testing::ReadFile(a + ckpt).empty());
    EXPECT_TRUE(::uniter::testing::ReadFile(a + ckpt) == ::uniter::testing::ReadFile(b + ckpt)) << ckpt;
    EXPECT_EQ(::uniter::testing::ReadFile(a + csv), ::uniter::testing::ReadFile(b + csv)) << csv;
  }
  int events = 0;
  for (const auto& e : fs::directory_iterator(b + "/log"))
    events += e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_EQ(events, 2) << "a resumed run adds one events file";

  // A finished run, rerun: nothing to do, nothing changed.
  const auto done_before = listing(a);
  const auto again = Uniter(train(a));
  EXPECT_EQ(again.exit_code, 0) << again.out;
  auto done_after = listing(a);
  EXPECT_EQ(done_after.size(), done_before.size() + 1);  // only a new (empty of scalars) events file
  for (const auto& [path, bytes] : done_before) EXPECT_TRUE(done_after[path] == bytes) << path;

  // The state file is a torch.load-able state dict whose model.* are the step-60 weights.
  if (!::uniter::testing::PythonHas("torch")) GTEST_SKIP() << "reference Python lacks torch";
  const auto py = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import sys, torch; s, m = (torch.load(p) for p in sys.argv[1:]); "
            "assert all(torch.equal(s['model.' + k], v) for k, v in m.items()), 'weights differ'; "
            "assert s['rng.python'].shape == (625,) and s['rng.torch'].dtype == torch.uint8; "
            "print(sum(k.startswith('optim.') for k in s))") +
      " " + Quote(b + "/train_state/state_step_60.pt") + " " + Quote(b + "/ckpt/model_step_60.pt"));
  ASSERT_EQ(py.exit_code, 0) << py.out;
  EXPECT_GT(std::stoi(py.out), 0) << "no optimizer state saved";

  // The resumed run's events file (read by PyPI tensorboard) logs steps 21..60
  // with the uninterrupted run's values: the running loss was resumed too.
  if (!::uniter::testing::PythonHas("tensorboard")) GTEST_SKIP() << "reference Python lacks tensorboard";
  auto scalars = [](const std::string& dir) {
    std::vector<std::map<std::pair<std::string, int64_t>, double>> files;
    for (const auto& e : fs::directory_iterator(dir + "/log")) {
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) != 0) continue;
      const auto tb = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                             Quote(std::string(UNITER_TRAINER_TEST_DIR) + "/read_events.py") + " " +
                                             Quote(e.path().string()));
      EXPECT_EQ(tb.exit_code, 0) << tb.out;
      files.emplace_back();
      const auto j = nlohmann::json::parse(tb.out);
      for (const auto& v : j.at("scalars"))
        files.back()[{v[0].get<std::string>(), v[1].get<int64_t>()}] = v[2].get<double>();
    }
    return files;
  };
  const auto full = scalars(a), parts = scalars(b);
  ASSERT_EQ(full.size(), 2u);  // the run and the no-op rerun
  ASSERT_EQ(parts.size(), 2u);
  const auto& uninterrupted = full[0].size() > full[1].size() ? full[0] : full[1];
  const auto& resumed = parts[0].count({"loss", 1}) ? parts[1] : parts[0];
  int64_t first = 1000, last = 0, n = 0;
  for (const auto& [key, value] : resumed) {
    if (key.first.rfind("perf/", 0) == 0 || key.first.rfind("valid/val_ex", 0) == 0) continue;  // wall-clock rates
    ASSERT_TRUE(uninterrupted.count(key)) << key.first << " " << key.second;
    EXPECT_EQ(value, uninterrupted.at(key)) << key.first << " at step " << key.second;
    if (key.first == "loss") first = std::min(first, key.second), last = std::max(last, key.second), ++n;
  }
  EXPECT_EQ(first, 21);
  EXPECT_EQ(last, 60);
  EXPECT_EQ(n, 40);
}

// bf16 CPU autocast (--amp_dtype bf16; the configs' fp16 alone runs fp32 on
// the CPU) end to end: learns the word-image rule as the fp32 run does, and a
// run killed after its step-100 state resumes to the uninterrupted result,
// checkpoints and results byte for byte (fp32 checkpoints: not an fp16 run).
TEST_F(TrainNlvr2, Bf16AutocastLearnsAndResumesBitExactly) {
  const std::string config = Quote(WriteConfig("bf16", Config()));
  auto train = [&](const std::string& out, const std::string& extra) {
    return "train nlvr2 --config " + config + " --output_dir " + Quote(out) +
           " --amp_dtype bf16 --valid_steps 100 --dropout 0.1 --threads 1" + extra;
  };
  const std::string a = *root_ + "/bf16_a", b = *root_ + "/bf16_b";
  const auto ra = Uniter(train(a, ""));
  ASSERT_EQ(ra.exit_code, 0) << ra.out;
  EXPECT_NE(ra.out.find("train: on cpu, bf16"), std::string::npos) << ra.out;
  size_t rows = 0;
  const double acc =
      AccuracyOf(::uniter::testing::ReadFile(a + "/results/val_results_300_rank0.csv"), *dev_, &rows);
  EXPECT_EQ(rows, dev_->size());
  EXPECT_GE(acc, 0.9) << "bf16 dev accuracy after 300 steps";
  std::fprintf(stderr, "bf16 dev accuracy %.4f\n", acc);

  const std::string marker = b + "/train_state/state_step_100.json";
  const auto killed = ::uniter::testing::Run(
      "exec 2>/dev/null; " + Quote(::uniter::testing::UniterBinary()) + " " + train(b, " --quiet") +
      " >/dev/null & pid=$!; " + "while [ ! -e " + Quote(marker) +
      " ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; kill -9 $pid; wait $pid; echo $?");
  ASSERT_EQ(killed.out, "137\n") << "the run was not killed mid-way";
  ASSERT_FALSE(fs::exists(b + "/ckpt/model_step_300.pt")) << "the run finished before the kill";
  const auto rb = Uniter(train(b, " --quiet"));
  ASSERT_EQ(rb.exit_code, 0) << rb.out;
  for (const char* step : {"100", "200", "300"}) {
    const std::string ckpt = std::string("/ckpt/model_step_") + step + ".pt";
    const std::string csv = std::string("/results/val_results_") + step + "_rank0.csv";
    EXPECT_TRUE(::uniter::testing::ReadFile(a + ckpt) == ::uniter::testing::ReadFile(b + ckpt)) << ckpt;
    EXPECT_EQ(::uniter::testing::ReadFile(a + csv), ::uniter::testing::ReadFile(b + csv)) << csv;
  }
  if (!::uniter::testing::PythonHas("torch")) GTEST_SKIP() << "reference Python lacks torch";
  const auto py = ::uniter::testing::Run(
      Quote(::uniter::testing::Python()) + " -c " +
      Quote("import sys, torch; m = torch.load(sys.argv[1]); print(sorted({str(v.dtype) for v in m.values()}))") +
      " " + Quote(a + "/ckpt/model_step_300.pt"));
  ASSERT_EQ(py.exit_code, 0) << py.out;
  EXPECT_EQ(py.out, "['torch.float32']\n");
}

TEST_F(TrainNlvr2, UnknownKeyIsOneLineListingTheValidKeysAndWritesNothing) {
  const std::string out = *root_ + "/bad_key";
  auto c = Config();
  c["learnin_rate"] = 1e-4;
  const auto r = Uniter("train nlvr2 --config " + Quote(WriteConfig("bad_key", c)) + " --output_dir " + Quote(out));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("learnin_rate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("learning_rate"), std::string::npos) << r.out;  // listed as valid
  EXPECT_NE(r.out.find("gradient_accumulation_steps"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(fs::exists(out));
  // The same on the command line.
  const auto r2 = Uniter("train nlvr2 --config " + Quote(WriteConfig("good", Config())) + " --output_dir " +
                         Quote(out) + " --no_such_key 3");
  EXPECT_NE(r2.exit_code, 0);
  EXPECT_NE(r2.out.find("no_such_key"), std::string::npos) << r2.out;
  EXPECT_EQ(std::count(r2.out.begin(), r2.out.end(), '\n'), 1) << r2.out;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(TrainNlvr2, MissingDbIsOneLineAndWritesNothing) {
  const std::string out = *root_ + "/missing_db";
  auto c = Config();
  c["val_txt_db"] = *root_ + "/no_such_db";
  const auto r = Uniter("train nlvr2 --config " + Quote(WriteConfig("missing", c)) + " --output_dir " + Quote(out));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find(*root_ + "/no_such_db"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(TrainNlvr2, NonEmptyOutputDirWithoutTrainingStateIsRefused) {
  const std::string out = *root_ + "/occupied";
  fs::create_directories(out);
  ::uniter::testing::WriteFile(out + "/notes.txt", "mine");
  const auto r = Uniter("train nlvr2 --config " + Quote(WriteConfig("occupied", Config())) + " --output_dir " +
                        Quote(out) + " --quiet");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find(out), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 1);
}

// A run stopped before its first checkpoint left UNITER's layout but no state:
// refused in one line that says so, nothing touched.
TEST_F(TrainNlvr2, RunWithoutTrainingStateIsNotResumed) {
  const std::string out = *root_ + "/no_state";
  fs::create_directories(out + "/log");
  ::uniter::testing::WriteFile(out + "/log/hps.json", "{}");
  const auto r = Uniter("train nlvr2 --config " + Quote(WriteConfig("no_state", Config())) + " --output_dir " +
                        Quote(out) + " --quiet");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find(out + " holds a run stopped before its first checkpoint"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(::uniter::testing::ReadFile(out + "/log/hps.json"), "{}");
  EXPECT_EQ(std::distance(fs::recursive_directory_iterator(out), fs::recursive_directory_iterator()), 2);
}

// --dump-batches: each dumped micro-batch's loss recomputed by the Python
// restatement of UNITER's model from the file alone (tests/trainer/dump_check.h).
TEST_F(TrainNlvr2, DumpedPairedAttnBatchesRecomputeInUnitersModel) {
  testing::ExpectDumpedLossesMatchUniter(*root_, "nlvr2", WriteConfig("dump_nlvr2", Config()), "paired-attn");
  const auto bad = Uniter("train nlvr2 --config " + Quote(WriteConfig("dump_bad", Config())) + " --output_dir " +
                          Quote(*root_ + "/dump_bad") + " --dump-batches three " + Quote(*root_ + "/dump_bad_dir"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("--dump-batches N DIR: N must be a count"), std::string::npos) << bad.out;
  EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
  EXPECT_FALSE(fs::exists(*root_ + "/dump_bad"));
}

TEST_F(TrainNlvr2, DumpedVqaAndVeBatchesRecomputeInUnitersModel) {
  auto c = Config();
  for (const char* k : {"model", "use_img_type", "train_txt_db", "train_img_db"}) c.erase(k);
  c["train_txt_dbs"] = {*root_ + "/vqa_train"};
  c["train_img_dbs"] = {*root_ + "/img"};
  c["val_txt_db"] = *root_ + "/vqa_dev";
  c["ans2label"] = *root_ + "/ans2label.json";
  testing::ExpectDumpedLossesMatchUniter(*root_, "vqa", WriteConfig("dump_vqa", c),
                                         std::to_string(kVqaAnswers.size()));
  auto v = Config();
  v.erase("model");
  v.erase("use_img_type");
  v["train_txt_db"] = *root_ + "/ve_train";
  v["val_txt_db"] = *root_ + "/ve_dev";
  testing::ExpectDumpedLossesMatchUniter(*root_, "ve", WriteConfig("dump_ve", v), "");
}

}  // namespace
}  // namespace uniter::trainer
