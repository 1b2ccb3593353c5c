// `uniter eval nlvr2` against a restatement of UNITER's scripts/eval_nlvr2.py,
// on the real NLVR2 dev and test1 annotations with generated predictions.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace uniter::trainer {
namespace {

namespace fs = std::filesystem;
using ::uniter::testing::Quote;
using Cli = ::uniter::testing::CommandResult;
Cli Sh(const std::string& cmd) { return ::uniter::testing::Run(cmd); }

struct Annotation {
  std::string identifier, label;
};

std::vector<Annotation> ReadAnnotations(const std::string& path) {
  std::vector<Annotation> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    out.push_back({j.at("identifier").get<std::string>(), j.at("label").get<std::string>()});
  }
  return out;
}

// A results.csv that is right with probability `p_right`, in mixed case, with
// a few identifiers written twice (the later line counts) and a few extra
// identifiers the annotations do not have.
std::string MakeResults(const std::vector<Annotation>& anns, double p_right, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution right(p_right), twice(0.02);
  const char* spellings[2][3] = {{"False", "false", "FALSE"}, {"True", "true", "TRUE"}};
  std::ostringstream out;
  for (const auto& a : anns) {
    const bool truth = a.label == "True";
    if (twice(rng)) out << a.identifier << "," << spellings[!truth][0] << "\n";  // overridden below
    const bool said = right(rng) ? truth : !truth;
    out << a.identifier << "," << spellings[said][rng() % 3] << "\n";
  }
  out << "extra-1-0-0,True\n";
  return out.str();
}

std::string Annotations(const std::string& split) {
  return ::uniter::testing::SharedDataDir() + "/nlvr2/" + split + ".json";
}

TEST(EvalNlvr2, PrintsWhatUnitersScriptPrints) {
  for (const std::string split : {"dev", "test1"}) {
    const std::string ann = Annotations(split);
    UNITER_REQUIRE_REFERENCE(fs::exists(ann)) << "NLVR2 annotations missing: " << ann;
    const auto anns = ReadAnnotations(ann);
    ASSERT_GT(anns.size(), 6000u);
    int case_no = 0;
    for (const double p : {1.0, 0.0, 0.77, 0.5}) {
      const std::string csv = ::uniter::testing::TempDir("eval_nlvr2") + "/results.csv";
      ::uniter::testing::WriteFile(csv, MakeResults(anns, p, 1234 + case_no++));
      const auto ours = Sh(Quote(::uniter::testing::UniterBinary()) + " eval nlvr2 " + Quote(csv) + " " + Quote(ann));
      const auto ref = Sh(Quote(::uniter::testing::Python()) + " " +
                           Quote(std::string(UNITER_TRAINER_TEST_DIR) + "/eval_nlvr2_ref.py") + " " + Quote(csv) + " " +
                           Quote(ann));
      ASSERT_EQ(ours.exit_code, 0) << ours.out;
      ASSERT_EQ(ref.exit_code, 0) << ref.out;
      EXPECT_EQ(ours.out, ref.out) << split << " p=" << p;
      EXPECT_EQ(ours.out.rfind("accuracy=", 0), 0u) << ours.out;
    }
  }
}

TEST(EvalNlvr2, JsonHasTheCounts) {
  const std::string dir = ::uniter::testing::TempDir("eval_nlvr2_json");
  ::uniter::testing::WriteFile(dir + "/ann.json",
                               "{\"identifier\": \"dev-1-0-0\", \"label\": \"True\"}\n"
                               "{\"identifier\": \"dev-1-1-0\", \"label\": \"False\"}\n"
                               "{\"identifier\": \"dev-2-0-1\", \"label\": \"True\"}\n");
  ::uniter::testing::WriteFile(dir + "/r.csv", "dev-1-0-0,true\ndev-1-1-0,True\ndev-2-0-1,TRUE\n");
  const auto r = Sh(Quote(::uniter::testing::UniterBinary()) + " eval nlvr2 --json " + Quote(dir + "/r.csv") + " " +
                     Quote(dir + "/ann.json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["examples"], 3);
  EXPECT_EQ(j["correct"], 2);
  EXPECT_EQ(j["sentences"], 2);  // dev-1--0 and dev-2--1
  EXPECT_EQ(j["consistent"], 1);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(j["consistency"].get<double>(), 0.5);
}

TEST(EvalNlvr2, BadInputIsOneLineNamingTheFile) {
  const std::string dir = ::uniter::testing::TempDir("eval_nlvr2_bad");
  const std::string ann = dir + "/ann.json", csv = dir + "/r.csv";
  ::uniter::testing::WriteFile(ann, "{\"identifier\": \"dev-1-0-0\", \"label\": \"True\"}\n{\"identifier\": \"dev-1-1-0\"}\n");
  ::uniter::testing::WriteFile(csv, "dev-1-0-0,True\n");
  const std::string bin = Quote(::uniter::testing::UniterBinary()) + " eval nlvr2 ";
  struct Case {
    std::string args, expect;
  } cases[] = {
      {Quote(csv) + " " + Quote(ann), ann + ":2"},                       // annotation without a label
      {Quote(dir + "/none.csv") + " " + Quote(ann), dir + "/none.csv"},  // unreadable results
  };
  for (const auto& c : cases) {
    const auto r = Sh(bin + c.args + " 2>&1");
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
  ::uniter::testing::WriteFile(ann, "{\"identifier\": \"dev-1-0-0\", \"label\": \"True\"}\n"
                                    "{\"identifier\": \"dev-1-1-0\", \"label\": \"False\"}\n");
  const auto r = Sh(bin + Quote(csv) + " " + Quote(ann) + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("1 of 2 examples have no prediction (dev-1-1-0)"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace uniter::trainer
