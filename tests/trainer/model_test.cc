// The model against independent references: transformers' BertModel for the
// text-only encoder, and a PyTorch restatement of UNITER's model code
// (uniter_ref.py) for every head's scores and losses. Weights, batches and
// expected outputs come from Python as one torch.save'd dict, read here with
// LibTorch's own pickle loader (not our checkpoint reader).
#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "common/error.h"
#include "tests/test_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/config.h"
#include "trainer/internal/task_model.h"
#include "trainer/internal/uniter_model.h"
#include "trainer/model.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;

using ::uniter::trainer::testing::LoadPlainDict;
using ::uniter::trainer::testing::TestDir;

// Runs uniter_ref.py with `python`; returns its io.pt dict.
std::map<std::string, at::Tensor> RunReference(const std::string& python, const std::string& args,
                                               const std::string& dir) {
  const auto r = ::uniter::testing::Run(Quote(python) + " " + Quote(TestDir() + "/uniter_ref.py") + " " + args +
                                        " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return LoadPlainDict(dir + "/io.pt");
}

// Copies every parameter of `model` from `io` (keys must match both ways,
// except the listed prefixes the reference lacks).
void CopyWeights(torch::nn::Module& model, const std::map<std::string, at::Tensor>& io,
                 const std::string& ours_only_prefix = "") {
  at::NoGradGuard no_grad;
  std::set<std::string> ours;
  for (auto& p : model.named_parameters()) {
    ours.insert(p.key());
    auto it = io.find(p.key());
    if (it == io.end()) {
      EXPECT_FALSE(ours_only_prefix.empty()) << "reference lacks " << p.key();
      if (!ours_only_prefix.empty()) {
        EXPECT_EQ(p.key().rfind(ours_only_prefix, 0), 0u) << p.key();
      }
      continue;
    }
    ASSERT_EQ(p.value().sizes(), it->second.sizes()) << p.key();
    p.value().copy_(it->second);
  }
  for (const auto& [key, value] : io) {
    if (key.rfind("batch.", 0) == 0 || key.rfind("out.", 0) == 0 || key.rfind("grad.", 0) == 0) continue;
    EXPECT_TRUE(ours.count(key)) << "the model lacks UNITER's key " << key;
  }
}

at::Tensor Opt(const std::map<std::string, at::Tensor>& io, const std::string& key) {
  auto it = io.find("batch." + key);
  return it == io.end() ? at::Tensor() : it->second;
}

Batch ToBatch(const std::map<std::string, at::Tensor>& io) {
  Batch b;
  b.input_ids = Opt(io, "input_ids");
  b.position_ids = Opt(io, "position_ids");
  b.txt_type_ids = Opt(io, "txt_type_ids");
  b.img_feat = Opt(io, "img_feat");
  b.img_pos_feat = Opt(io, "img_pos_feat");
  b.img_type_ids = Opt(io, "img_type_ids");
  b.attn_masks = Opt(io, "attn_masks");
  b.gather_index = Opt(io, "gather_index");
  b.targets = Opt(io, "targets");
  return b;
}

void ExpectClose(const at::Tensor& ours, const at::Tensor& ref, double tol, const std::string& what) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const double diff = (ours - ref).abs().max().item<double>();
  EXPECT_LE(diff, tol) << what << " max |diff| " << diff;
}

TEST(UniterModel, TextOnlyEncoderEqualsTransformersBertModel) {
  const std::string python = UNITER_HF_PYTHON;
  if (::uniter::testing::Run(Quote(python) + " -c 'import transformers' 2>/dev/null").exit_code != 0)
    GTEST_SKIP() << "transformers missing from " << python << " (scripts/install-deps.sh makes that venv)";
  const std::string dir = ::uniter::testing::TempDir("bert_parity");
  const auto io = RunReference(python, "bert " + Quote(dir), dir);
  const UniterConfig config = UniterConfig::FromJsonFile(dir + "/model.json");
  at::manual_seed(0);
  UniterModel model(config, config.img_dim);
  CopyWeights(*model, io, "img_embeddings.");
  model->eval();
  at::NoGradGuard no_grad;
  UniterModelImpl::Inputs in;
  in.input_ids = io.at("batch.input_ids");
  in.position_ids = io.at("batch.position_ids");
  in.txt_type_ids = io.at("batch.txt_type_ids");
  in.attn_masks = io.at("batch.attn_masks");
  const at::Tensor ref = io.at("out.sequence");
  const at::Tensor valid = in.attn_masks.ne(0), pads = valid.logical_not();
  ASSERT_TRUE(pads.any().item<bool>()) << "the reference batch needs padding rows for the packed path to be tested";
  const at::Tensor seq = model(in);
  ASSERT_EQ(seq.sizes(), ref.sizes());
  // BertModel computes values at padding rows that nothing reads; ours skips them (zeros).
  ExpectClose(seq.index({valid}), ref.index({valid}), 1e-5, "sequence output at attended rows");
  EXPECT_EQ(seq.index({pads}).abs().max().item<double>(), 0.0) << "padding rows are zeros";
  ExpectClose(model->pooler(seq), io.at("out.pooled"), 1e-5, "pooled output");

  // The last layer only for the rows asked for: position 0 (a pooled head), then every third row.
  in.output_rows = FirstRows(in.attn_masks);
  const at::Tensor first = model(in);
  ExpectClose(model->pooler(first), io.at("out.pooled"), 1e-5, "pooled output, last layer on position 0 only");
  EXPECT_EQ(first.slice(1, 1).abs().max().item<double>(), 0.0) << "rows not asked for are zeros";
  in.output_rows = valid & (at::arange(valid.numel()).view(valid.sizes()) % 3 == 0);
  const at::Tensor some = model(in);
  ExpectClose(some.index({in.output_rows}), ref.index({in.output_rows}), 1e-5, "every third row");
  EXPECT_EQ(some.index({in.output_rows.logical_not()}).abs().max().item<double>(), 0.0);
}

struct HeadCase {
  const char* task;
  const char* variant;
  TaskOptions options;
};

void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.task << ' ' << c.variant; }

class HeadParity : public ::testing::TestWithParam<HeadCase> {};

TEST_P(HeadParity, ScoresAndLossesEqualUniterRestatement) {
  const HeadCase& c = GetParam();
  const std::string dir = ::uniter::testing::TempDir(std::string("head_") + c.task + c.variant);
  const auto io = RunReference(::uniter::testing::Python(),
                               std::string("heads ") + Quote(dir) + " " + c.task + " " + c.variant, dir);
  const UniterConfig config = UniterConfig::FromJsonFile(dir + "/model.json");
  TaskOptions options = c.options;
  if (options.task == TaskKind::kVqa) options.num_answers = io.at("out.scores").size(1);
  at::manual_seed(0);
  TaskModel model = MakeTaskModel(config, options);
  CopyWeights(*model, io);
  model->eval();  // as the reference: no dropout, so gradients are comparable
  const Batch batch = ToBatch(io);
  const at::Tensor scores = model->Scores(batch);
  const at::Tensor loss = model->Loss(scores, batch);
  const at::Tensor train_loss = model->TrainLoss(loss, batch);
  train_loss.backward();
  ExpectClose(scores.detach(), io.at("out.scores"), 1e-5, "scores");
  ExpectClose(loss.detach(), io.at("out.loss"), 1e-5, "loss");
  ExpectClose(train_loss.detach().reshape({1}), io.at("out.train_loss"), 1e-5, "train loss");
  // The backward pass: every gradient the reference has (mask_embedding has
  // none: finetuning never uses it), within 1e-5 of its largest entry + 1e-6.
  for (const auto& p : model->named_parameters()) {
    auto it = io.find("grad." + p.key());
    if (it == io.end()) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key() << " has a gradient the reference lacks";
      continue;
    }
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    const double scale = it->second.abs().max().item<double>();
    ExpectClose(p.value().grad(), it->second, 1e-5 * scale + 1e-6, "grad " + p.key());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Heads, HeadParity,
    ::testing::Values(HeadCase{"nlvr2", "paired", {TaskKind::kNlvr2, "paired", 0}},
                      HeadCase{"nlvr2", "triplet", {TaskKind::kNlvr2, "triplet", 0}},
                      HeadCase{"nlvr2", "paired-attn", {TaskKind::kNlvr2, "paired-attn", 0}},
                      HeadCase{"vqa", "", {TaskKind::kVqa, "", 0}}, HeadCase{"ve", "", {TaskKind::kVe, "", 0}}),
    [](const auto& info) {
      std::string name = std::string(info.param.task) + info.param.variant;
      std::erase(name, '-');
      return name;
    });

// UNITER's init_weights: N(0, 0.02) for Linear/Embedding weights (padding rows
// too), zero biases, LayerNorm 1/0; MHA in_proj xavier_uniform, out_proj
// N(0, 0.02); NLVR2 type rows [t0, t1, t1]. Seeded: same seed, same weights.
TEST(Model, InitIsUnitersAndSeeded) {
  UniterConfig c;
  c.vocab_size = 500;
  c.hidden_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 128;
  TaskOptions o;
  o.task = TaskKind::kNlvr2;
  o.nlvr2_model = "paired-attn";
  Model model(c, o, 42);
  at::NoGradGuard no_grad;
  for (const auto& p : model.module().named_parameters()) {
    const std::string& k = p.key();
    const at::Tensor& t = p.value();
    SCOPED_TRACE(k);
    if (k.find("LayerNorm") != std::string::npos || k.find("layer_norm") != std::string::npos ||
        k.find("vqa_output.2") != std::string::npos) {
      EXPECT_TRUE(at::equal(t, k.ends_with(".weight") ? at::ones_like(t) : at::zeros_like(t)));
    } else if (k.ends_with("bias")) {
      EXPECT_TRUE(at::equal(t, at::zeros_like(t)));
    } else if (k.ends_with("in_proj_weight")) {
      const double bound = std::sqrt(6.0 / (c.hidden_size + 3 * c.hidden_size));
      EXPECT_LE(t.abs().max().item<double>(), bound);
      EXPECT_NEAR(t.std().item<double>(), bound / std::sqrt(3.0), 0.05 * bound);
    } else if (t.numel() >= 4000) {
      EXPECT_NEAR(t.std().item<double>(), 0.02, 0.002);
      EXPECT_NEAR(t.mean().item<double>(), 0.0, 0.002);
    }
  }
  auto& emb = *model.module().uniter->embeddings;
  EXPECT_GT(emb.word_embeddings->weight[0].abs().sum().item<double>(), 0.0);  // padding row drawn too
  const at::Tensor types = emb.token_type_embeddings->weight;
  ASSERT_EQ(types.size(0), 3);
  EXPECT_TRUE(at::equal(types[2], types[1]));
  EXPECT_FALSE(at::equal(types[0], types[1]));
  Model same(c, o, 42), other(c, o, 43);
  EXPECT_TRUE(at::equal(same.module().named_parameters()["attn1.in_proj_weight"],
                        model.module().named_parameters()["attn1.in_proj_weight"]));
  EXPECT_FALSE(at::equal(other.module().named_parameters()["nlvr2_output.weight"],
                         model.module().named_parameters()["nlvr2_output.weight"]));
}

TEST(UniterConfig, ReadsUniterJsonAndRefusesBadValues) {
  const UniterConfig c = UniterConfig::FromJson(
      R"({"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 4096,
          "max_position_embeddings": 512, "num_attention_heads": 16, "num_hidden_layers": 24,
          "type_vocab_size": 2, "vocab_size": 28996})",
      "uniter-large.json");
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.num_hidden_layers, 24);
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.intermediate_size, 4096);
  EXPECT_EQ(UniterConfig::FromJson(c.ToJson(), "x").intermediate_size, 4096);
  try {
    UniterConfig::FromJson(R"({"hidden_size": 100, "num_attention_heads": 12})", "bad.json");
    FAIL() << "accepted 100 / 12";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(UniterConfig::FromJson(R"({"hidden_size": "768"})", "x"), FormatError);
}

}  // namespace
}  // namespace uniter::trainer
