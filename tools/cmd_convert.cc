// `uniter convert <task>`: raw benchmark annotations → UNITER txt_db.
// One CLI11 subcommand per converter (converters/converter_list.inc order).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "converters/convert.h"
#include "tools/commands.h"

namespace uniter::tools {

namespace {

struct ConvertCliOptions {
  converters::ConvertOptions convert;
  bool lower = false;
  bool cased = false;
  std::map<std::string, std::vector<std::string>> flags;
};

void AddTask(CLI::App& parent, const converters::TaskInfo& info) {
  auto opts = std::make_shared<ConvertCliOptions>();
  CLI::App* sub = parent.add_subcommand(info.name, info.summary);
  sub->footer("\n" + info.help);
  auto& o = opts->convert;
  o.task = info.name;
  sub->add_option("--ann", o.annotations, "annotation file (repeat for tasks that take several, in order)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--vocab", o.vocab, "WordPiece vocab.txt (e.g. bert-base-cased-vocab.txt)");
  sub->add_option("--spm", o.spm, "SentencePiece model, instead of --vocab");
  auto* lower = sub->add_flag("--lower", opts->lower, "lower-case (default: when the vocab name says uncased)");
  sub->add_flag("--cased", opts->cased, "keep case")->excludes(lower);
  sub->add_option("--output,-o", o.output, "output db dir (multi-split tasks: the parent of their dbs)")->required();
  sub->add_option("--threads", o.threads, "threads (default: all cores)");
  sub->add_flag("--resume", o.resume, "continue an interrupted run: keep records already in the db");
  sub->add_flag("--force", o.force, "delete an existing db first");
  sub->add_flag("--strict", o.strict, "stop at the first bad record instead of writing rejects.jsonl");
  sub->add_option("--missing-imgs", o.missing_imgs, "JSON list of feature files whose examples are dropped")
      ->check(CLI::ExistingFile);
  sub->add_option("--rejects", o.rejects, "rejects file (default: <output>/rejects.jsonl)");
  sub->add_flag("--quiet,-q", o.quiet, "no progress output");
  for (const auto& f : info.flags) {
    auto* opt = sub->add_option("--" + f.name, opts->flags[f.name], f.help);
    if (!f.repeatable) opt->expected(1);
  }
  sub->callback([opts] {
    converters::ConvertOptions o = opts->convert;
    if (opts->lower) o.lower = true;
    if (opts->cased) o.lower = false;
    for (const auto& [k, v] : opts->flags)
      if (!v.empty()) o.task_options[k] = v;
    const converters::ConvertSummary s = converters::RunConvert(o);
    std::printf("%s\n", converters::FormatSummary(o, s).c_str());
  });
}

}  // namespace

void SetupConvertCommand(CLI::App& app) {
  CLI::App* convert = app.add_subcommand(
      "convert", "convert a benchmark's official annotation files into a UNITER txt_db");
  convert->require_subcommand(1);
  for (const auto& info : converters::Tasks()) AddTask(*convert, info);
}

}  // namespace uniter::tools
