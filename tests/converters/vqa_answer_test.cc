// VQA answer normalisation and scores against the official evaluation code
// (vqa_eval_ref.py: vqaEval.py's functions, run by Python).
#include "converters/vqa_answer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>

#include "featdb/txt_db.h"
#include "tests/test_util.h"

namespace uniter::converters {
namespace {

std::vector<std::string> TrickyAnswers() {
  return {"Two.", "two", "2 ", "the red one", "red!", "red;", "a red", "it's raining", "its raining",
          "10:30", "10:30.", "10,30", "1,000", "1,000 dogs, 2 cats", "ten thirty", "dont know", "Dont Know",
          "don't know", "n/a", "none", "zero", "3.5", "3.50", ".5", "3 1/2", "yes.", "no!", "(sure)",
          "a-b", "a - b", "a -b", "x=y", "@home", "`tick`", "\"quoted\"", "[brackets]", "{braces}", "c++",
          "under_score", "back\\slash", "what?", "what ?", "hmm...", "e.g. this", "mr. t", "...........",
          std::string(40, '.') + "x", "  spaced   out\twords\n", "Isnt", "isnt it", "youre right",
          "shes", "She's", "an apple", "The End", "ow's'at", "y'allll", "", " ", "one two three four five",
          "ONE", "Eleven", "11", "1.5.", "the the", "café", "naïve 2", "whats up", "wont", "won't",
          // Python's str.lower() and str.split() and re's \\d are Unicode-aware.
          "CAF\u00c9", "\u03a3\u039f\u03a6\u039f\u03a3 \u039f\u03a3", "\u0130stanbul", "STRA\u00dfE", "\u01c5a",
          "two\u00a0dogs", "x\u3000y", "a\u2003the\u2028one", "\u0661,\u0662 dogs", "3.\u0665 feet", "end.\u0660",
          "\u0410\u0411\u0412 \u0413\u0414", "\u1e9e", "ten\u0085eleven", "\u00c5NGSTR\u00d6M", "\u2160 \u216b"};
}

TEST(VqaAnswer, NormalisesLikeTheOfficialEvaluation) {
  std::vector<std::string> answers = TrickyAnswers();
  // Every answer of UNITER's table too, where the shared data has it.
  const std::string table = testing::SharedDataDir() + "/vqa/ans2label.json";
  const auto j = featdb::ReadJsonFile(table);
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it) answers.push_back(it.key());
  std::string input;
  for (const auto& a : answers) input += nlohmann::json(a).dump() + "\n";
  const std::string in_path = testing::TempDir("vqa_answers") + "/in.jsonl";
  testing::WriteFile(in_path, input);
  const auto r = testing::Run(testing::Quote(testing::Python()) + " " +
                              testing::Quote(testing::SourceRoot() + "/tests/converters/vqa_eval_ref.py") + " < " +
                              testing::Quote(in_path));
  ASSERT_EQ(r.exit_code, 0);
  std::istringstream out(r.out);
  std::string line;
  size_t i = 0;
  while (std::getline(out, line)) {
    ASSERT_LT(i, answers.size());
    const auto want = nlohmann::json::parse(line);
    const std::string& a = answers[i++];
    EXPECT_EQ(VqaProcessPunctuation(a), want[0].get<std::string>()) << a;
    EXPECT_EQ(VqaProcessDigitArticle(VqaProcessPunctuation(a)), want[1].get<std::string>()) << a;
    EXPECT_EQ(NormalizeVqaAnswer(a), want[2].get<std::string>()) << a;
  }
  EXPECT_EQ(i, answers.size());
  EXPECT_GT(i, 3000u) << "UNITER's answer table was not checked";
}

TEST(VqaAnswer, ScoresAreTheOfficialLeaveOneOutAccuracy) {
  const auto r = testing::Run(
      testing::Quote(testing::Python()) + " -c " +
      testing::Quote("import sys; sys.path.insert(0, '" + testing::SourceRoot() +
                     "/tests/converters'); from vqa_eval_ref import vqa_score; "
                     "print(' '.join(repr(vqa_score(c)) for c in range(11)))"));
  ASSERT_EQ(r.exit_code, 0);
  std::istringstream in(r.out);
  for (int c = 0; c <= 10; ++c) {
    double want;
    in >> want;
    EXPECT_NEAR(VqaScore(c), want, 1e-12) << c;
  }
}

}  // namespace
}  // namespace uniter::converters
