// `uniter train TASK --dump-batches 3 DIR` checked against UNITER's code as
// restated in Python (dump_batches_ref.py): the run starts from a state dict
// the reference wrote, accumulates its first 3 micro-batches into one update
// (so all 3 see those weights), with zero dropout (model config and
// `dropout`): each dumped loss must equal the reference's loss on the dumped
// arrays (≤ 1e-5), and each file must hold UNITER's collate keys.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace uniter::trainer::testing {

// The tiny model config of the end-to-end tests, without dropout.
inline nlohmann::json NoDropoutModelJson() {
  return {{"vocab_size", 128}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"intermediate_size", 128}, {"hidden_act", "gelu"}, {"hidden_dropout_prob", 0.0},
          {"attention_probs_dropout_prob", 0.0}, {"max_position_embeddings", 64}, {"type_vocab_size", 2},
          {"initializer_range", 0.02}};
}

// Runs `uniter train <task> --config <config> <extra>` dumping 3 micro-batches
// into <root>/dump_<task> from dump_batches_ref.py's initial weights, then the
// reference over the files. `arg`: the reference's model argument (NLVR2
// variant, VQA answers, RE mlp).
inline void ExpectDumpedLossesMatchUniter(const std::string& root, const std::string& task,
                                          const std::string& config, const std::string& arg,
                                          const std::string& extra = "") {
  namespace fs = std::filesystem;
  using ::uniter::testing::Quote;
  UNITER_REQUIRE_PYTHON_MODULE("torch");
  const std::string model_json = root + "/dump_model_" + task + ".json";
  const std::string init = root + "/dump_init_" + task + ".pt";
  const std::string dump = root + "/dump_" + task, out = root + "/dump_run_" + task;
  ::uniter::testing::WriteFile(model_json, NoDropoutModelJson().dump());
  const std::string ref = Quote(::uniter::testing::Python()) + " " +
                          Quote(std::string(UNITER_TRAINER_TEST_DIR) + "/dump_batches_ref.py");
  const auto ri = ::uniter::testing::Run(ref + " init " + task + " " + Quote(model_json) + " " + Quote(init) + " " +
                                         arg + " 2>&1");
  ASSERT_EQ(ri.exit_code, 0) << ri.out;
  const auto r = ::uniter::testing::Run(
      Quote(::uniter::testing::UniterBinary()) + " train " + task + " --config " + Quote(config) +
      " --output_dir " + Quote(out) + " --model_config " + Quote(model_json) + " --checkpoint " + Quote(init) +
      " --dropout 0 --gradient_accumulation_steps 3 --num_train_steps 1 --valid_steps 1 -q --threads 1" +
      " --dump-batches 3 " + Quote(dump) + " " + extra + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dump)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"batch_000000.npz", "batch_000001.npz", "batch_000002.npz"}));
  // --dump-batches is ours: not a UNITER key in hps.json.
  EXPECT_EQ(::uniter::testing::ReadFile(out + "/log/hps.json").find("\"dump_batches"), std::string::npos);
  const auto c = ::uniter::testing::Run(ref + " check " + task + " " + Quote(model_json) + " " + Quote(init) + " " +
                                        Quote(dump) + " " + arg + " 2>&1");
  EXPECT_EQ(c.exit_code, 0) << c.out;
  std::istringstream lines(c.out);
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.at("errors").empty()) << line;
    const double loss = j.at("loss").get<double>(), want = j.at("ref").get<double>();
    EXPECT_TRUE(std::isfinite(loss)) << line;
    EXPECT_NEAR(loss, want, 1e-5) << line;
    ++checked;
  }
  EXPECT_EQ(checked, 3) << c.out;
}

}  // namespace uniter::trainer::testing
