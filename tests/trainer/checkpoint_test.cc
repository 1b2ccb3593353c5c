// Checkpoints against Python torch: files torch.save wrote in the zip and the
// legacy format (fp16, gamma/beta, BERT layout) load bit-exactly, and the files
// we write load in Python with strict=True and give the same scores there.
#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "common/error.h"
#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/config.h"
#include "trainer/internal/checkpoint.h"
#include "trainer/internal/task_model.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;

using ::uniter::trainer::testing::LoadPlainDict;
using ::uniter::trainer::testing::TestDir;

bool IsWeight(const std::string& k) { return k.rfind("batch.", 0) != 0 && k.rfind("out.", 0) != 0 && k.rfind("grad.", 0) != 0; }

// The Pythons with torch: the reference venv's (Debian torch 1.13) and, where
// installed, PyPI's torch 2.x (venv-cuda).
std::vector<std::string> TorchPythons() {
  std::vector<std::string> out{::uniter::testing::Python()};
  const std::string cuda = std::string(getenv("HOME") ? getenv("HOME") : "") + "/.cache/uniter/venv-cuda/bin/python";
  if (std::filesystem::exists(cuda) &&
      ::uniter::testing::Run(Quote(cuda) + " -c 'import torch' 2>/dev/null").exit_code == 0)
    out.push_back(cuda);
  return out;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void Write(const std::string& python, const std::string& task, const std::string& variant) {
    task_ = task;
    variant_ = variant;
    dir_ = ::uniter::testing::TempDir("ckpt_" + task + variant + std::to_string(std::hash<std::string>()(python)));
    const auto r = ::uniter::testing::Run(Quote(python) + " " + Quote(TestDir() + "/ckpt_ref.py") + " write " +
                                          Quote(dir_) + " " + task + " " + Quote(variant) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    io_ = LoadPlainDict(dir_ + "/io.pt");
  }
  TaskModel Fresh() {
    const UniterConfig config = UniterConfig::FromJsonFile(dir_ + "/model.json");
    TaskOptions o;
    o.task = task_ == "nlvr2" ? TaskKind::kNlvr2 : task_ == "ve" ? TaskKind::kVe : TaskKind::kVqa;
    o.nlvr2_model = variant_;
    o.num_answers = io_.at("out.scores").size(1);
    at::manual_seed(7);
    return MakeTaskModel(config, o);
  }
  at::Tensor Scores(TaskModel& model) {
    Batch b;
    auto opt = [&](const char* k) {
      auto it = io_.find(std::string("batch.") + k);
      return it == io_.end() ? at::Tensor() : it->second;
    };
    b.input_ids = opt("input_ids");
    b.position_ids = opt("position_ids");
    b.img_feat = opt("img_feat");
    b.img_pos_feat = opt("img_pos_feat");
    b.img_type_ids = opt("img_type_ids");
    b.attn_masks = opt("attn_masks");
    b.gather_index = opt("gather_index");
    b.targets = opt("targets");
    model->eval();
    at::NoGradGuard no_grad;
    return model->Scores(b);
  }
  void ExpectSameWeights(const StateDict& sd, bool as_fp16) {
    size_t n = 0;
    for (const auto& [key, t] : sd) {
      const at::Tensor& ref = io_.at(key);
      const at::Tensor want = as_fp16 ? ref.to(at::kHalf) : ref;
      EXPECT_EQ(t.scalar_type(), want.scalar_type()) << key;
      EXPECT_TRUE(t.sizes().equals(want.sizes()) && at::equal(t, want)) << key << " differs";
      ++n;
    }
    size_t weights = 0;
    for (const auto& [k, v] : io_) weights += IsWeight(k);
    EXPECT_EQ(n, weights);
  }

  std::string task_, variant_, dir_;
  std::map<std::string, at::Tensor> io_;
};

TEST_F(CheckpointTest, ZipAndLegacyFilesFromPythonLoadBitExactly) {
  for (const std::string& python : TorchPythons()) {
    SCOPED_TRACE(python);
    Write(python, "nlvr2", "paired-attn");
    ExpectSameWeights(ReadStateDict(dir_ + "/zip.pt"), false);
    ExpectSameWeights(ReadStateDict(dir_ + "/legacy.pt"), false);
  }
}

TEST_F(CheckpointTest, LoadedModelGivesTheReferenceScores) {
  for (const char* file : {"zip.pt", "legacy.pt"}) {
    SCOPED_TRACE(file);
    Write(::uniter::testing::Python(), "vqa", "");
    TaskModel model = Fresh();
    const LoadReport r = LoadCheckpoint(*model, dir_ + "/" + file);
    EXPECT_EQ(r.format, std::string(file) == "zip.pt" ? "zip" : "legacy");
    EXPECT_TRUE(r.missing.empty()) << r.missing.front();
    EXPECT_TRUE(r.unexpected.empty()) << r.unexpected.front();
    EXPECT_LE((Scores(model) - io_.at("out.scores")).abs().max().item<double>(), 1e-5);
  }
}

TEST_F(CheckpointTest, Fp16GammaBetaLegacyFileIsRenamedAndConverted) {
  Write(::uniter::testing::Python(), "nlvr2", "paired");
  TaskModel model = Fresh();
  const LoadReport r = LoadCheckpoint(*model, dir_ + "/legacy_fp16_gamma.pt");
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.unexpected.empty());
  EXPECT_GT(r.renamed.size(), 10u);
  EXPECT_GT(r.converted_fp16, 10);
  for (const auto& p : model->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(p.value(), io_.at(p.key()).to(at::kHalf).to(at::kFloat))) << p.key();
  }
}

TEST_F(CheckpointTest, PretrainedEncoderExpandsTypeEmbeddingForNlvr2) {
  Write(::uniter::testing::Python(), "nlvr2", "paired-attn");
  TaskModel model = Fresh();
  LoadOptions options;
  options.expand_type_rows = model->ExpandedTypeRows();
  const LoadReport r = LoadCheckpoint(*model, dir_ + "/pretrained.pt", options);
  EXPECT_TRUE(r.type_embedding_expanded);
  EXPECT_TRUE(r.unexpected.empty());
  for (const auto& k : r.missing) EXPECT_EQ(k.rfind("uniter.", 0), std::string::npos) << k;
  const at::Tensor t = model->uniter->embeddings->token_type_embeddings->weight;
  const at::Tensor ref = io_.at("uniter.embeddings.token_type_embeddings.weight");
  ASSERT_EQ(t.size(0), 3);
  EXPECT_TRUE(at::equal(t[0], ref[0]));
  EXPECT_TRUE(at::equal(t[1], ref[1]));
  EXPECT_TRUE(at::equal(t[2], ref[1]));  // [t0, t1, t1]
}

TEST_F(CheckpointTest, BertLayoutLoadsThroughTheConvertRule) {
  Write(::uniter::testing::Python(), "vqa", "");
  TaskModel model = Fresh();
  if (!std::filesystem::exists(dir_ + "/bert.pt"))
    GTEST_SKIP() << "pytorch_pretrained_bert missing from " << ::uniter::testing::Python()
                 << " (scripts/install-deps.sh)";
  const LoadReport r = LoadCheckpoint(*model, dir_ + "/bert.pt");
  EXPECT_EQ(r.unexpected.size(), 8u);  // the pretraining heads
  for (const auto& k : r.unexpected) EXPECT_EQ(k.rfind("cls.", 0), 0u) << k;
  for (const auto& k : r.missing)
    EXPECT_TRUE(k.rfind("uniter.img_embeddings.", 0) == 0 || k.rfind("vqa_output.", 0) == 0) << k;
  EXPECT_TRUE(at::equal(model->uniter->embeddings->word_embeddings->weight,
                        io_.at("uniter.embeddings.word_embeddings.weight")));
  EXPECT_TRUE(at::equal(model->uniter->encoder->layer->ptr<LayerImpl>(1)->output->LayerNorm->bias,
                        io_.at("uniter.encoder.layer.1.output.LayerNorm.bias")));
}

TEST_F(CheckpointTest, SavedFileLoadsStrictlyInPythonWithTheSameScores) {
  for (const char* variant : {"paired-attn", "triplet"}) {
    Write(::uniter::testing::Python(), "nlvr2", variant);
    TaskModel model = Fresh();
    LoadCheckpoint(*model, dir_ + "/legacy.pt");
    const std::string ours = dir_ + "/model_step_3.pt";
    SaveCheckpoint(*model, ours);
    EXPECT_FALSE(std::filesystem::exists(ours + ".tmp"));
    for (const std::string& python : TorchPythons()) {
      const auto r = ::uniter::testing::Run(Quote(python) + " " + Quote(TestDir() + "/ckpt_ref.py") + " check " +
                                            Quote(dir_) + " nlvr2 " + variant + " " + Quote(ours) + " 2>&1");
      EXPECT_EQ(r.exit_code, 0) << python << ": " << r.out;
    }
    // And it reads back bit-exactly here.
    ExpectSameWeights(ReadStateDict(ours), false);
  }
}

TEST_F(CheckpointTest, MisshapedOrTruncatedFileIsOneLineNamingKeyOrOffset) {
  Write(::uniter::testing::Python(), "nlvr2", "paired");
  TaskModel model = Fresh();
  try {
    LoadCheckpoint(*model, dir_ + "/misshaped.pt");
    FAIL() << "accepted a mis-shaped tensor";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("misshaped.pt"), std::string::npos) << m;
    EXPECT_NE(m.find("'nlvr2_output.weight'"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  const std::string full = ::uniter::testing::ReadFile(dir_ + "/legacy.pt");
  // Every cut in the pickles' part, then every ~1/64 of the storages.
  std::vector<size_t> cuts;
  for (size_t cut = 0; cut < 4096 && cut < full.size(); cut += 7) cuts.push_back(cut);
  for (size_t k = 1; k < 64; ++k) cuts.push_back(full.size() * k / 64);
  cuts.push_back(full.size() - 1);
  for (size_t cut : cuts) {
    const std::string path = dir_ + "/cut.pt";
    ::uniter::testing::WriteFile(path, full.substr(0, cut));
    try {
      ReadStateDict(path);
      ADD_FAILURE() << "accepted a file cut at " << cut;
    } catch (const FormatError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("cut.pt"), std::string::npos) << m;
      EXPECT_TRUE(m.find("offset") != std::string::npos || cut < 15) << cut << ": " << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
  const std::string zip = ::uniter::testing::ReadFile(dir_ + "/zip.pt");
  for (size_t k = 0; k < 16; ++k) {
    const size_t cut = zip.size() * k / 16 + k;
    ::uniter::testing::WriteFile(dir_ + "/cutzip.pt", zip.substr(0, cut));
    try {
      ReadStateDict(dir_ + "/cutzip.pt");
      ADD_FAILURE() << "accepted a zip cut at " << cut;
    } catch (const FormatError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("cutzip.pt"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << cut << ": " << m;
    }
  }
}

}  // namespace
}  // namespace uniter::trainer
