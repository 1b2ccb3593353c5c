// Shared helpers of the converters tests: one tokenizer per process, the
// fixtures (make_fixtures.py), running a conversion in-process, and the
// Python reference check (check_txtdb.py).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "converters/convert.h"
#include "tests/test_util.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters::testutil {

inline std::string CasedVocab() { return testing::SharedDataDir() + "/vocab/bert-base-cased-vocab.txt"; }

inline const tokenizer::Tokenizer& Toker() {
  static std::unique_ptr<tokenizer::Tokenizer> t = [] {
    tokenizer::TokenizerOptions o;
    o.vocab_path = CasedVocab();
    return tokenizer::CreateTokenizer(o);
  }();
  return *t;
}

// Fixture files in the official schemas, written once per process.
inline std::string Fixtures() {
  static const std::string dir = [] {
    const std::string d = testing::TempDir("fixtures");
    const auto r = testing::Run(testing::Quote(testing::Python()) + " " +
                                testing::Quote(testing::SourceRoot() + "/tests/converters/make_fixtures.py") +
                                " " + testing::Quote(d) + " " + testing::Quote(testing::SharedDataDir()));
    EXPECT_EQ(r.exit_code, 0) << "make_fixtures.py failed";
    return d;
  }();
  return dir;
}

inline ConvertOptions Options(const std::string& task, std::vector<std::string> anns, const std::string& out,
                              std::map<std::string, std::vector<std::string>> flags = {}) {
  ConvertOptions o;
  o.task = task;
  o.annotations = std::move(anns);
  o.vocab = CasedVocab();
  o.output = out;
  o.quiet = true;
  o.threads = 2;
  o.task_options = std::move(flags);
  return o;
}

// Runs check_txtdb.py; returns its output; EXPECTs "OK".
inline std::string PythonCheck(const std::string& task, const std::string& db, const std::vector<std::string>& anns,
                               const std::vector<std::string>& opts = {}, const std::string& vocab = CasedVocab(),
                               bool lower = false) {
  std::string cmd = testing::Quote(testing::Python()) + " " +
                    testing::Quote(testing::SourceRoot() + "/tests/converters/check_txtdb.py") + " " + task + " " +
                    testing::Quote(db) + " --vocab " + testing::Quote(vocab) + (lower ? " --lower" : "");
  for (const auto& a : anns) cmd += " --ann " + testing::Quote(a);
  for (const auto& o : opts) cmd += " --opt " + testing::Quote(o);
  const auto r = testing::Run(cmd + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("OK ", 0), 0u) << r.out;
  return r.out;
}

#define UNITER_REQUIRE_REFERENCES()                  \
  do {                                               \
    UNITER_REQUIRE_PYTHON_MODULE("pytorch_pretrained_bert"); \
    UNITER_REQUIRE_PYTHON_MODULE("lmdb");            \
    UNITER_REQUIRE_PYTHON_MODULE("lz4.frame");       \
    UNITER_REQUIRE_PYTHON_MODULE("msgpack");         \
  } while (0)

}  // namespace uniter::converters::testutil
