// The SentencePiece backend against Debian's spm_encode CLI on models that
// spm_train builds in the test.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "tests/test_util.h"
#include "tests/tokenizer/corpus.h"
#include "tokenizer/tokenizer.h"
#include "common/utf8.h"

namespace uniter::tokenizer {
namespace {

using uniter::testing::Quote;
// Not Run: gtest's Test::Run would hide it inside TEST bodies.
uniter::testing::CommandResult Sh(const std::string& cmd) { return uniter::testing::Run(cmd); }

bool HaveSpmTools() { return Sh("command -v spm_train >/dev/null && command -v spm_encode >/dev/null").exit_code == 0; }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class SentencePiece : public ::testing::TestWithParam<const char*> {};

TEST_P(SentencePiece, IdsAndPiecesEqualSpmEncode) {
  UNITER_REQUIRE_REFERENCE(HaveSpmTools()) << "spm_train/spm_encode missing (apt-get install sentencepiece)";
  const std::string type = GetParam();
  const std::string dir = uniter::testing::TempDir(std::string("spm_") + type);
  const auto captions = testing::CcCaptions();
  std::string train;
  for (size_t i = 0; i < 6000 && i < captions.size(); ++i) train += captions[i] + "\n";
  uniter::testing::WriteFile(dir + "/train.txt", train);
  const auto r = Sh("cd " + Quote(dir) + " && spm_train --input=train.txt --model_prefix=cc_" + type +
                     " --vocab_size=800 --model_type=" + type + " --character_coverage=1.0 >train.log 2>&1");
  ASSERT_EQ(r.exit_code, 0) << uniter::testing::ReadFile(dir + "/train.log");
  const std::string model = dir + "/cc_" + type + ".model";

  // Held-out captions plus the torture lines that are valid UTF-8 without
  // '\r' (spm_encode's line reader would treat those differently).
  std::string input;
  size_t n = 0;
  for (size_t i = 6000; i < captions.size() && i < 9000; ++i, ++n) input += captions[i] + "\n";
  for (const auto& l : testing::TortureLines()) {
    if (!IsValidUtf8(l) || l.find('\r') != std::string::npos || l.find('\0') != std::string::npos)
      continue;
    input += l + "\n";
    ++n;
  }
  uniter::testing::WriteFile(dir + "/in.txt", input);
  const auto want_ids = Lines(Sh("spm_encode --model=" + Quote(model) + " --output_format=id < " +
                                  Quote(dir + "/in.txt")).out);
  const auto want_pieces = Lines(Sh("spm_encode --model=" + Quote(model) + " --output_format=piece < " +
                                     Quote(dir + "/in.txt")).out);
  const auto lines = Lines(input);
  ASSERT_EQ(lines.size(), n);
  ASSERT_EQ(want_ids.size(), n);
  ASSERT_EQ(want_pieces.size(), n);

  TokenizerOptions o;
  o.spm_path = model;
  const auto t = CreateTokenizer(o);
  EXPECT_EQ(t->Name(), "cc_" + type);
  EXPECT_EQ(t->VocabSize(), 800u);
  EXPECT_FALSE(t->lower_case());
  EXPECT_EQ(t->special().unk, 0);  // spm_train's defaults: <unk>=0 <s>=1 </s>=2, no pad
  EXPECT_EQ(t->special().cls, 1);
  EXPECT_EQ(t->special().sep, 2);
  EXPECT_EQ(t->IdToToken(0), "<unk>");
  int bad = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string ids;
    for (int32_t id : t->Encode(lines[i])) ids += (ids.empty() ? "" : " ") + std::to_string(id);
    std::string pieces;
    for (const auto& p : t->Tokenize(lines[i])) pieces += (pieces.empty() ? "" : " ") + p;
    if ((ids != want_ids[i] || pieces != want_pieces[i]) && ++bad <= 5)
      ADD_FAILURE() << "line " << i << " '" << testing::Escape(lines[i]) << "'\n ours " << ids << "\n spm  "
                    << want_ids[i];
  }
  EXPECT_EQ(bad, 0);
  // Ill-formed UTF-8 goes to the model as it is and does not crash.
  EXPECT_NO_THROW(t->Encode("caf\xff\xc3 \xed\xa0\x80"));
}

INSTANTIATE_TEST_SUITE_P(ModelTypes, SentencePiece, ::testing::Values("unigram", "bpe"));

TEST(SentencePieceErrors, NameTheFile) {
  const std::string dir = uniter::testing::TempDir("spm_err");
  TokenizerOptions o;
  o.spm_path = dir + "/missing.model";
  try {
    CreateTokenizer(o);
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.model"), std::string::npos);
  }
  uniter::testing::WriteFile(dir + "/junk.model", "not a model");
  o.spm_path = dir + "/junk.model";
  try {
    CreateTokenizer(o);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("junk.model"), std::string::npos);
  }
  o.lower = true;
  EXPECT_THROW(CreateTokenizer(o), UsageError);
}

}  // namespace
}  // namespace uniter::tokenizer
