// `uniter tokenize` end to end: each output mode, stdin, files, --special,
// --threads, case flags, and errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "tests/test_util.h"
#include "tests/tokenizer/corpus.h"

namespace uniter::tokenizer {
namespace {

using uniter::testing::Quote;
// Not Run: gtest's Test::Run would hide it inside TEST bodies.
uniter::testing::CommandResult Sh(const std::string& cmd) { return uniter::testing::Run(cmd); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string Join(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += (s.empty() ? "" : " ") + std::to_string(x);
  return s;
}

std::string Tok(const std::string& args) { return Quote(uniter::testing::UniterBinary()) + " tokenize " + args; }

class TokenizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = uniter::testing::TempDir("cli");
    const auto nlvr2 = testing::Nlvr2Sentences();
    lines_.assign(nlvr2.begin(), nlvr2.begin() + 400);
    const auto torture = testing::TortureLines();
    lines_.insert(lines_.end(), torture.begin(), torture.begin() + 200);
    for (const auto& l : lines_) {
      if (l.find('\r') != std::string::npos) continue;  // keep one line per line for every reader
      input_ += l + "\n";
      kept_.push_back(l);
    }
    uniter::testing::WriteFile(dir_ + "/in.txt", input_);
  }
  std::string dir_, input_;
  std::vector<std::string> lines_, kept_;
};

TEST_F(TokenizeCli, IdsEqualPytorchPretrainedBertFromFileAndStdin) {
  UNITER_REQUIRE_PYTHON_MODULE("pytorch_pretrained_bert");
  const std::string vocab = testing::VocabPath(false);
  const auto ref = testing::ReferenceIds("ppb", vocab, true, kept_);
  const auto from_file = Sh(Tok("--vocab " + Quote(vocab) + " " + Quote(dir_ + "/in.txt")));
  ASSERT_EQ(from_file.exit_code, 0);
  const auto got = Lines(from_file.out);
  ASSERT_EQ(got.size(), kept_.size());
  for (size_t i = 0; i < kept_.size(); ++i) EXPECT_EQ(got[i], Join(ref[i])) << testing::Escape(kept_[i]);
  const auto from_stdin = Sh(Tok("--vocab " + Quote(vocab) + " --threads 1 < " + Quote(dir_ + "/in.txt")));
  EXPECT_EQ(from_stdin.exit_code, 0);
  EXPECT_EQ(from_stdin.out, from_file.out);
  const auto dash = Sh(Tok("--vocab " + Quote(vocab) + " --threads 2 - < " + Quote(dir_ + "/in.txt")));
  EXPECT_EQ(dash.out, from_file.out);
  // Two files: outputs concatenated in order.
  const auto twice = Sh(Tok("--vocab " + Quote(vocab) + " " + Quote(dir_ + "/in.txt") + " " + Quote(dir_ + "/in.txt")));
  EXPECT_EQ(twice.out, from_file.out + from_file.out);
}

TEST_F(TokenizeCli, TokensJsonlAndSpecial) {
  const std::string vocab = testing::VocabPath(true);
  const auto ids = Lines(Sh(Tok("--vocab " + Quote(vocab) + " " + Quote(dir_ + "/in.txt"))).out);
  const auto special = Lines(Sh(Tok("--vocab " + Quote(vocab) + " --special " + Quote(dir_ + "/in.txt"))).out);
  const auto tokens = Lines(Sh(Tok("--vocab " + Quote(vocab) + " --output tokens " + Quote(dir_ + "/in.txt"))).out);
  const auto jsonl = Lines(Sh(Tok("--vocab " + Quote(vocab) + " --output jsonl --special " + Quote(dir_ + "/in.txt"))).out);
  ASSERT_EQ(ids.size(), kept_.size());
  ASSERT_EQ(special.size(), kept_.size());
  ASSERT_EQ(tokens.size(), kept_.size());
  ASSERT_EQ(jsonl.size(), kept_.size());
  // The vocab's own line numbers of [CLS]/[SEP] and of each token.
  std::vector<std::string> vocab_lines = Lines(uniter::testing::ReadFile(vocab));
  std::map<std::string, int> id_of;
  for (size_t i = 0; i < vocab_lines.size(); ++i) id_of[vocab_lines[i]] = static_cast<int>(i);
  const std::string cls = std::to_string(id_of["[CLS]"]), sep = std::to_string(id_of["[SEP]"]);
  for (size_t i = 0; i < kept_.size(); ++i) {
    EXPECT_EQ(special[i], ids[i].empty() ? cls + " " + sep : cls + " " + ids[i] + " " + sep);
    std::istringstream ti(tokens[i]), ii(ids[i]);
    std::string t;
    int id;
    std::vector<int> from_tokens, from_ids;
    while (ti >> t) from_tokens.push_back(id_of.at(t));
    while (ii >> id) from_ids.push_back(id);
    EXPECT_EQ(from_tokens, from_ids);
    const auto j = nlohmann::json::parse(jsonl[i]);
    const auto jids = j.at("ids").get<std::vector<int>>();
    const auto jtok = j.at("tokens").get<std::vector<std::string>>();
    ASSERT_EQ(jids.size(), jtok.size());
    ASSERT_EQ(jids.size(), from_ids.size() + 2);
    EXPECT_EQ(jtok.front(), "[CLS]");
    EXPECT_EQ(jtok.back(), "[SEP]");
    for (size_t k = 0; k < jids.size(); ++k) EXPECT_EQ(id_of.at(jtok[k]), jids[k]);
  }
}

TEST_F(TokenizeCli, CaseFlagsOverrideTheVocabName) {
  const std::string vocab = testing::VocabPath(true);
  uniter::testing::WriteFile(dir_ + "/hello.txt", "Hello World\n");
  const auto cased = Sh(Tok("--vocab " + Quote(vocab) + " --output tokens " + Quote(dir_ + "/hello.txt")));
  const auto lower = Sh(Tok("--vocab " + Quote(vocab) + " --lower --output tokens " + Quote(dir_ + "/hello.txt")));
  EXPECT_EQ(cased.out, "Hello World\n");
  EXPECT_EQ(lower.out, "hello world\n");
  const auto uncased =
      Sh(Tok("--vocab " + Quote(testing::VocabPath(false)) + " --cased --output tokens " + Quote(dir_ + "/hello.txt")));
  const auto uncased_default =
      Sh(Tok("--vocab " + Quote(testing::VocabPath(false)) + " --output tokens " + Quote(dir_ + "/hello.txt")));
  EXPECT_EQ(uncased_default.out, "hello world\n");
  EXPECT_NE(uncased.out, uncased_default.out);
}

TEST_F(TokenizeCli, BadInputsGiveOneLineErrors) {
  const auto missing = Sh(Tok("--vocab " + Quote(dir_ + "/no-such-vocab.txt") + " " + Quote(dir_ + "/in.txt") + " 2>&1"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(Lines(missing.out).size(), 1u) << missing.out;
  EXPECT_NE(missing.out.find("no-such-vocab.txt"), std::string::npos) << missing.out;
  const auto no_input =
      Sh(Tok("--vocab " + Quote(testing::VocabPath(true)) + " " + Quote(dir_ + "/no-such-input.txt") + " 2>&1"));
  EXPECT_NE(no_input.exit_code, 0);
  EXPECT_EQ(Lines(no_input.out).size(), 1u) << no_input.out;
  EXPECT_NE(no_input.out.find("no-such-input.txt"), std::string::npos) << no_input.out;
  const auto no_vocab = Sh(Tok(Quote(dir_ + "/in.txt") + " 2>&1"));
  EXPECT_NE(no_vocab.exit_code, 0);
  EXPECT_EQ(Lines(no_vocab.out).size(), 1u) << no_vocab.out;
  const auto bad_format = Sh(Tok("--vocab " + Quote(testing::VocabPath(true)) + " --output xml < /dev/null 2>&1"));
  EXPECT_NE(bad_format.exit_code, 0);
}

TEST_F(TokenizeCli, EmptyInputAndFinalLineWithoutNewline) {
  const std::string vocab = testing::VocabPath(false);
  EXPECT_EQ(Sh(Tok("--vocab " + Quote(vocab) + " < /dev/null")).out, "");
  uniter::testing::WriteFile(dir_ + "/nonl.txt", "a\n\nb c");
  EXPECT_EQ(Lines(Sh(Tok("--vocab " + Quote(vocab) + " --output tokens " + Quote(dir_ + "/nonl.txt"))).out),
            (std::vector<std::string>{"a", "", "b c"}));
}

}  // namespace
}  // namespace uniter::tokenizer
