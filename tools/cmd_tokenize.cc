// `uniter tokenize`: BERT WordPiece / SentencePiece ids for each input line.
#include <CLI/CLI.hpp>
#include <tbb/task_arena.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"
#include "tools/commands.h"

namespace uniter::tools {

namespace {

struct TokenizeCommandOptions {
  std::vector<std::string> inputs;  // files; none or "-" = stdin
  std::string vocab;
  std::string spm;
  bool lower = false;
  bool cased = false;
  std::string output = "ids";
  int threads = 0;
  bool special = false;
};

void RunTokenize(const TokenizeCommandOptions& o) {
  if (o.lower && o.cased) throw UsageError("--lower and --cased exclude each other");
  tokenizer::TokenizerOptions topts;
  topts.vocab_path = o.vocab;
  topts.spm_path = o.spm;
  if (o.lower) topts.lower = true;
  if (o.cased) topts.lower = false;
  tokenizer::StreamOptions sopts;
  sopts.format = tokenizer::ParseOutputFormat(o.output);
  sopts.add_special = o.special;
  const auto tok = tokenizer::CreateTokenizer(topts);

  std::vector<std::string> inputs = o.inputs;
  if (inputs.empty()) inputs.push_back("-");
  tbb::task_arena arena(o.threads > 0 ? o.threads : tbb::task_arena::automatic);
  arena.execute([&] {
    for (const std::string& path : inputs) {
      if (path == "-") {
        tokenizer::TokenizeStream(*tok, stdin, "<stdin>", stdout, sopts);
        continue;
      }
      std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
      if (!f) ThrowErrno("cannot open", path);
      tokenizer::TokenizeStream(*tok, f.get(), path, stdout, sopts);
    }
  });
}

}  // namespace

void SetupTokenizeCommand(CLI::App& app) {
  auto opts = std::make_shared<TokenizeCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Tokenize text lines like UNITER's bert_tokenize (pytorch-pretrained-bert 0.6.2): one output line per "
      "input line");
  cmd->add_option("inputs", opts->inputs, "input files (default or '-': stdin)");
  auto* vocab = cmd->add_option("--vocab", opts->vocab, "BERT vocab.txt or HF tokenizer.json (WordPiece)");
  auto* spm = cmd->add_option("--spm", opts->spm, "SentencePiece .model instead of a vocabulary");
  vocab->excludes(spm);
  auto* lower = cmd->add_flag("--lower", opts->lower,
                              "lower-case and strip accents (default: when the vocab name contains 'uncased')");
  auto* cased = cmd->add_flag("--cased", opts->cased, "keep case and accents");
  lower->excludes(cased);
  cmd->add_option("--output", opts->output, "ids | tokens | jsonl (default: ids)")
      ->check(CLI::IsMember({"ids", "tokens", "jsonl"}));
  cmd->add_option("--threads", opts->threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--special", opts->special, "add [CLS] at the start and [SEP] at the end");
  cmd->callback([opts] { RunTokenize(*opts); });
}

}  // namespace uniter::tools
