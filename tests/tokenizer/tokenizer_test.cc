// Vocabulary loading, options, errors, invalid UTF-8 and the batch API.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <tbb/task_arena.h>

#include <filesystem>
#include <random>

#include "common/error.h"
#include "tests/test_util.h"
#include "tests/tokenizer/corpus.h"
#include "tokenizer/bert_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace uniter::tokenizer {
namespace {

using uniter::testing::Quote;

std::unique_ptr<Tokenizer> Bert(bool cased, std::optional<bool> lower = std::nullopt) {
  TokenizerOptions o;
  o.vocab_path = testing::VocabPath(cased);
  o.lower = lower;
  return CreateTokenizer(o);
}

TEST(Vocab, ReadsLikePytorchPretrainedBert) {
  UNITER_REQUIRE_PYTHON_MODULE("pytorch_pretrained_bert");
  const std::string dir = uniter::testing::TempDir("vocab");
  const std::string path = dir + "/odd-vocab.txt";
  // CRLF and lone CR line ends, surrounding whitespace (also NBSP), a blank
  // line, a duplicate, no final newline.
  uniter::testing::WriteFile(path, "[PAD]\r\n[UNK]\r  hello \n\n\xc2\xa0world\xe3\x80\x80\nhello\n##s\tx\n\xe4\xb8\xad");
  const Vocab v = Vocab::FromTxt(path);
  const auto r = uniter::testing::Run(
      Quote(uniter::testing::Python()) + " -c " +
      Quote("import json,sys\nfrom pytorch_pretrained_bert.tokenization import load_vocab\n"
            "print(json.dumps(load_vocab(sys.argv[1])))") +
      " " + Quote(path));
  ASSERT_EQ(r.exit_code, 0);
  const auto want = nlohmann::json::parse(r.out);
  ASSERT_EQ(want.size(), v.ids().size());
  for (const auto& [token, id] : want.items()) EXPECT_EQ(v.TokenToId(token), id.get<int32_t>()) << token;
  EXPECT_EQ(v.IdToToken(2), "hello");
  EXPECT_EQ(v.TokenToId("hello"), 5);  // the later duplicate wins, like the dict
}

TEST(Vocab, ErrorsNameTheFile) {
  const std::string dir = uniter::testing::TempDir("vocab_err");
  try {
    Vocab::FromTxt(dir + "/missing.txt");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos) << e.what();
  }
  uniter::testing::WriteFile(dir + "/bad.txt", "[UNK]\nok\nb\xff" "d\n");
  try {
    Vocab::FromTxt(dir + "/bad.txt");
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:3"), std::string::npos) << e.what();
  }
  uniter::testing::WriteFile(dir + "/bpe.json", R"({"model": {"type": "BPE", "vocab": {}}})");
  TokenizerOptions o;
  o.vocab_path = dir + "/bpe.json";
  EXPECT_THROW(CreateTokenizer(o), FormatError);
  uniter::testing::WriteFile(dir + "/nounk-vocab.txt", "a\nb\n");
  o.vocab_path = dir + "/nounk-vocab.txt";
  try {
    CreateTokenizer(o);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("nounk-vocab.txt"), std::string::npos) << e.what();
  }
  TokenizerOptions both;
  both.vocab_path = "a.txt";
  both.spm_path = "b.model";
  EXPECT_THROW(CreateTokenizer(both), UsageError);
  EXPECT_THROW(CreateTokenizer(TokenizerOptions{}), UsageError);
}

TEST(Tokenizer, NamesSpecialIdsAndCaseDefaults) {
  const auto uncased = Bert(false), cased = Bert(true);
  EXPECT_EQ(uncased->Name(), "bert-base-uncased");
  EXPECT_EQ(cased->Name(), "bert-base-cased");
  EXPECT_TRUE(uncased->lower_case());
  EXPECT_FALSE(cased->lower_case());
  EXPECT_TRUE(Bert(true, true)->lower_case());
  EXPECT_FALSE(Bert(false, false)->lower_case());
  // Ids are line numbers of the vocab file.
  std::vector<std::string> lines;
  std::istringstream in(uniter::testing::ReadFile(testing::VocabPath(false)));
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  auto line_of = [&](const std::string& t) {
    return static_cast<int32_t>(std::find(lines.begin(), lines.end(), t) - lines.begin());
  };
  const SpecialIds s = uncased->special();
  EXPECT_EQ(s.unk, line_of("[UNK]"));
  EXPECT_EQ(s.cls, line_of("[CLS]"));
  EXPECT_EQ(s.sep, line_of("[SEP]"));
  EXPECT_EQ(s.pad, line_of("[PAD]"));
  EXPECT_EQ(s.mask, line_of("[MASK]"));
  EXPECT_EQ(uncased->VocabSize(), lines.size());
  EXPECT_EQ(uncased->TokenToId("##ing"), line_of("##ing"));
  EXPECT_EQ(uncased->TokenToId("no-such-token"), -1);
  EXPECT_EQ(uncased->IdToToken(line_of("hello")), "hello");
  EXPECT_THROW(uncased->IdToToken(-1), Error);
  EXPECT_THROW(uncased->IdToToken(static_cast<int32_t>(lines.size())), Error);
  // A generic file name takes the folder's name, as UNITER's toker names do.
  const std::string dir = uniter::testing::TempDir("named") + "/bert-base-uncased";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(testing::VocabPath(true), dir + "/vocab.txt");
  TokenizerOptions o;
  o.vocab_path = dir + "/vocab.txt";
  const auto named = CreateTokenizer(o);
  EXPECT_EQ(named->Name(), "bert-base-uncased");
  EXPECT_TRUE(named->lower_case());
  EXPECT_EQ(TokenizerNameFromPath("/x/multi.model"), "multi");
}

TEST(Tokenizer, TokenizeGivesTheTokensOfEncode) {
  const auto t = Bert(false);
  const std::string text = "The unaffable dogs, 中文 naïve!";
  const auto ids = t->Encode(text);
  const auto tokens = t->Tokenize(text);
  ASSERT_EQ(ids.size(), tokens.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(t->TokenToId(tokens[i]), ids[i]);
}

// The documented policy: an ill-formed sequence becomes U+FFFD, which BERT's
// cleaner drops, so it vanishes without splitting its word (the torture
// corpus checks the same against pytorch-pretrained-bert on decoded text).
TEST(Tokenizer, InvalidUtf8IsDroppedInsideItsWord) {
  for (bool cased : {false, true}) {
    const auto t = Bert(cased);
    EXPECT_EQ(t->Encode("hel\xfflo wor\xc3ld"), t->Encode("hello world"));
    EXPECT_EQ(t->Encode("\xed\xa0\x80\xf0\x9f\x98"), std::vector<int32_t>{});
    EXPECT_EQ(t->Encode("\xe4 x"), t->Encode(" x"));  // the space after a truncated lead byte survives
  }
}

TEST(Tokenizer, RandomBytesNeverCrashAndBothPathsAgree) {
  TokenizerOptions o;
  o.vocab_path = testing::VocabPath(false);
  const auto fused = BertTokenizer::Load(o, true), staged = BertTokenizer::Load(o, false);
  std::mt19937 rng(3);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 24, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng() % 4 == 0 ? 'a' + rng() % 26 : rng() % 256);
    ASSERT_EQ(fused->Encode(s), staged->Encode(s)) << testing::Escape(s);
  }
}

TEST(Tokenizer, EncodeBatchDoesNotDependOnThreads) {
  const auto t = Bert(true);
  const auto lines = testing::Nlvr2Sentences();
  std::vector<std::string_view> views(lines.begin(), lines.end());
  std::vector<std::vector<int32_t>> want;
  for (const auto& l : lines) want.push_back(t->Encode(l));
  for (int threads : {1, 2, 4}) {
    tbb::task_arena arena(threads);
    std::vector<std::vector<int32_t>> got;
    arena.execute([&] { got = t->EncodeBatch(views); });
    EXPECT_EQ(got, want) << threads << " threads";
  }
  EXPECT_TRUE(t->EncodeBatch({}).empty());
}

}  // namespace
}  // namespace uniter::tokenizer
