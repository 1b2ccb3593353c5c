// `uniter eval nlvr2 results.csv test1.json`, `uniter eval ve results.json
// txt_db|snli_ve_test.jsonl`, `uniter eval vqa results.json
// v2_mscoco_val2014_annotations.json`: a results file's task metrics,
// printed as UNITER's evaluation scripts print them (`name=value` lines).
#ifdef UNITER_HAVE_TORCH
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "converters/vqa_answer.h"
#include "tools/commands.h"
#include "trainer/nlvr2_eval.h"
#include "trainer/train.h"
#include "trainer/ve_eval.h"
#include "trainer/vqa_eval.h"

namespace uniter::tools {
namespace {

struct EvalNlvr2Options {
  std::string results;
  std::string annotations;
  bool json = false;
};

void RunEvalNlvr2(const EvalNlvr2Options& o) {
  const trainer::Nlvr2Metrics m = trainer::EvalNlvr2(o.results, o.annotations);
  if (o.json) {
    std::printf("{\"accuracy\": %.17g, \"consistency\": %.17g, \"examples\": %lld, \"correct\": %lld, "
                "\"sentences\": %lld, \"consistent\": %lld}\n",
                m.accuracy, m.consistency, static_cast<long long>(m.examples), static_cast<long long>(m.correct),
                static_cast<long long>(m.sentences), static_cast<long long>(m.consistent));
  } else {
    std::fputs(trainer::FormatNlvr2Metrics(m).c_str(), stdout);
  }
}

struct EvalVeOptions {
  std::string results;
  std::string labels;
};

void RunEvalVe(const EvalVeOptions& o) { std::fputs(trainer::FormatVeMetrics(trainer::EvalVe(o.results, o.labels)).c_str(), stdout); }

struct EvalVqaOptions {
  std::string results;
  std::string annotations;
};

void RunEvalVqa(const EvalVqaOptions& o) {
  trainer::VqaNormalizer norm;
  norm.process_punctuation = converters::VqaProcessPunctuation;
  norm.process_digit_article = converters::VqaProcessDigitArticle;
  std::fputs(trainer::FormatVqaMetrics(trainer::EvalVqa(o.results, o.annotations, norm)).c_str(), stdout);
}

struct EvalItmOptions {
  std::string results;
  std::string txt_db;
  bool fix = false;
};

}  // namespace

void SetupEvalCommand(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "task metrics of a results file, as UNITER's eval scripts print them");
  eval->require_subcommand(1);

  auto o = std::make_shared<EvalNlvr2Options>();
  CLI::App* nlvr2 = eval->add_subcommand(
      "nlvr2", "accuracy and consistency of results.csv (identifier,True|False) against NLVR2 annotations "
               "(UNITER's scripts/eval_nlvr2.py)");
  nlvr2->add_option("results", o->results, "results.csv from `uniter infer nlvr2` or UNITER's inf_nlvr2.py")
      ->required();
  nlvr2->add_option("annotations", o->annotations, "NLVR2 JSON lines (dev.json, test1.json)")->required();
  nlvr2->add_flag("--json", o->json, "one JSON object with the counts instead of name=value lines");
  nlvr2->callback([o] { RunEvalNlvr2(*o); });

  auto v = std::make_shared<EvalVeOptions>();
  CLI::App* ve = eval->add_subcommand(
      "ve", "accuracy of a VE results file ({pairID: label}) against a VE txt_db's targets or SNLI-VE annotations");
  ve->add_option("results", v->results, "results json from `uniter train ve` or `uniter infer ve`")->required();
  ve->add_option("labels", v->labels, "VE txt_db folder, or SNLI-VE JSON lines (pairID, gold_label)")->required();
  ve->callback([v] { RunEvalVe(*v); });

  auto q = std::make_shared<EvalVqaOptions>();
  CLI::App* vqa = eval->add_subcommand(
      "vqa", "official VQA accuracy (vqaEval.py) of [{answer, question_id}] against VQA v2 annotations");
  vqa->add_option("results", q->results, "results json from `uniter infer vqa` or UNITER's inf_vqa.py")->required();
  vqa->add_option("annotations", q->annotations, "VQA v2 annotations (v2_mscoco_val2014_annotations.json)")
      ->required();
  vqa->callback([q] { RunEvalVqa(*q); });

  auto it = std::make_shared<EvalItmOptions>();
  CLI::App* itm = eval->add_subcommand(
      "itm", "R@1/5/10 (text and image retrieval) of a results.bin as utils/itm_eval.py computes them");
  itm->add_option("results", it->results, "results.bin from `uniter infer itm` or UNITER's inf_itm.py")->required();
  itm->add_option("txt_db", it->txt_db, "the split's txt_db (txt2img.json, img2txts.json)")->required();
  itm->add_flag("--fix-uniter-quirks,--fix_uniter_quirks", it->fix,
                "image-retrieval R@K counts only the gt's place (UNITER also counts a matched row index < K)");
  itm->callback([it] { std::fputs(trainer::EvalItmResults(it->results, it->txt_db, it->fix).c_str(), stdout); });
}

}  // namespace uniter::tools
#endif  // UNITER_HAVE_TORCH
