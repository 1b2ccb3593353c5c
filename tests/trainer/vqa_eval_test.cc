// `uniter eval vqa` end to end against an independent Python restatement of
// the official VQA evaluation (tests/trainer/vqa_eval_ref.py).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace uniter::trainer {
namespace {

using ::uniter::testing::Quote;

// `uniter eval vqa` against an independent Python restatement of vqaEval.py
// (tests/trainer/vqa_eval_ref.py) on generated results and annotations whose
// answers exercise the normalisation: case, punctuation, articles, number
// words, contractions, digit commas, whitespace, unanimous humans (whose
// answers stay unnormalised).
TEST(EvalVqa, MatchesThePythonRestatementOfVqaEval) {
  const std::string root = ::uniter::testing::TempDir("eval_vqa");
  const std::vector<std::vector<std::string>> pools = {
      {"red", "Red", "red.", "the red", "red!", "blue"},
      {"two", "2", "Two", "2.", "three", "a two"},
      {"yes", "Yes", "yes,", "no", "  no\t", "yes?"},
      {"dont know", "don't know", "Dont Know", "cant", "t-shirt", "t shirt"},
      {"1,000", "1000", "3.5", "3.50", "one", "a 1"},
  };
  std::mt19937 gen(4242);
  nlohmann::json results = nlohmann::json::array(), annotations = nlohmann::json::array();
  int64_t answer_id = 1;
  for (int q = 0; q < 300; ++q) {
    const int64_t qid = 458752000 + q * 7;
    const auto& pool = pools[gen() % pools.size()];
    nlohmann::json answers = nlohmann::json::array();
    const bool unanimous = gen() % 6 == 0;
    const std::string first = pool[gen() % pool.size()];
    for (int h = 0; h < 10; ++h)
      answers.push_back({{"answer", unanimous ? first : pool[gen() % pool.size()]},
                         {"answer_confidence", "yes"},
                         {"answer_id", answer_id++}});
    annotations.push_back({{"question_id", qid}, {"answers", answers}, {"question_type", "what"},
                           {"answer_type", "other"}, {"image_id", q}});
    results.push_back({{"answer", pool[gen() % pool.size()]}, {"question_id", qid}});
  }
  std::shuffle(results.begin(), results.end(), gen);  // order must not matter
  const std::string res_path = root + "/results.json", ann_path = root + "/annotations.json";
  ::uniter::testing::WriteFile(res_path, results.dump());
  ::uniter::testing::WriteFile(ann_path, nlohmann::json{{"annotations", annotations}}.dump());
  const auto ref = ::uniter::testing::Run(Quote(::uniter::testing::Python()) + " " +
                                          Quote(std::string(UNITER_TRAINER_TEST_DIR) + "/vqa_eval_ref.py") + " " +
                                          Quote(res_path) + " " + Quote(ann_path) + " 2>&1");
  ASSERT_EQ(ref.exit_code, 0) << ref.out;
  const auto ev = ::uniter::testing::Run(Quote(::uniter::testing::UniterBinary()) + " eval vqa " + Quote(res_path) +
                                         " " + Quote(ann_path) + " 2>&1");
  ASSERT_EQ(ev.exit_code, 0) << ev.out;
  EXPECT_EQ(ev.out, ref.out);
  std::fprintf(stderr, "uniter eval vqa: %s", ev.out.c_str());

  // A question without a prediction: one line naming it, non-zero exit.
  results.erase(results.begin());
  ::uniter::testing::WriteFile(res_path, results.dump());
  const auto bad = ::uniter::testing::Run(Quote(::uniter::testing::UniterBinary()) + " eval vqa " +
                                          Quote(res_path) + " " + Quote(ann_path) + " 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << bad.out;
  EXPECT_NE(bad.out.find("has no prediction"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace uniter::trainer
