// The shared engine: option checks, the task, and its stages
// (converters/internal/stages.h: reader -> parallel work -> ordered writer)
// run in one flow graph inside this run's own task arena. Output depends only
// on the inputs.
#include <tbb/flow_graph.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "common/error.h"
#include "common/progress.h"
#include "common/rejects.h"
#include "converters/convert.h"
#include "converters/internal/stages.h"
#include "converters/internal/task.h"
#include "tokenizer/tokenizer.h"

namespace uniter::converters {

namespace fs = std::filesystem;

std::string TaskContext::Flag(const std::string& name, const std::string& fallback) const {
  auto it = options->task_options.find(name);
  if (it == options->task_options.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> TaskContext::FlagList(const std::string& name) const {
  auto it = options->task_options.find(name);
  return it == options->task_options.end() ? std::vector<std::string>{} : it->second;
}

const std::vector<TaskInfo>& Tasks() {
  static const std::vector<TaskInfo>* tasks = new std::vector<TaskInfo>{
#define UNITER_CONVERTER(Name, name) Name##TaskInfo(),
#include "converters/converter_list.inc"
#undef UNITER_CONVERTER
  };
  return *tasks;
}

namespace {

std::unique_ptr<Task> MakeTask(const std::string& name) {
#define UNITER_CONVERTER(Name, task_name) \
  if (name == task_name) return Make##Name##Task();
#include "converters/converter_list.inc"
#undef UNITER_CONVERTER
  std::string known;
  for (const auto& t : Tasks()) known += (known.empty() ? "" : ", ") + t.name;
  throw UsageError("unknown task '" + name + "' (known: " + known + ")");
}

}  // namespace

ConvertSummary RunConvert(const ConvertOptions& options) {
  if (options.vocab.empty() == options.spm.empty())
    throw UsageError("give exactly one of --vocab FILE and --spm MODEL");
  tokenizer::TokenizerOptions to;
  to.vocab_path = options.vocab;
  to.spm_path = options.spm;
  to.lower = options.lower;
  std::unique_ptr<tokenizer::Tokenizer> toker = tokenizer::CreateTokenizer(to);
  return RunConvert(options, *toker);
}

ConvertSummary RunConvert(const ConvertOptions& options, const tokenizer::Tokenizer& toker) {
  const auto start = std::chrono::steady_clock::now();
  if (options.output.empty()) throw UsageError("--output DB_DIR is required");
  if (options.annotations.empty()) throw UsageError("--ann FILE is required");
  if (options.resume && options.force) throw UsageError("--resume and --force exclude each other");
  for (const auto& a : options.annotations)
    if (!fs::exists(a)) throw IoError("no such file", a);

  std::unique_ptr<Task> task = MakeTask(options.task);
  TaskContext ctx;
  ctx.options = &options;
  ctx.toker = &toker;
  task->Prepare(ctx);

  ConvertSummary summary;
  summary.rejects_path = options.rejects.empty() ? (fs::path(options.output) / "rejects.jsonl").string()
                                                 : options.rejects;
  RejectsFile rejects(summary.rejects_path, options.resume);
  Progress progress("convert " + options.task, 0, options.quiet);
  // Opens every db first, so an existing one is refused before anything is written.
  TxtDbWriterStage writer(options, toker, task.get(), &ctx, &rejects, &progress, &summary);
  // A fresh run must not leave an earlier run's rejects behind.
  if (!options.resume) fs::remove(summary.rejects_path);

  const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  ConvertStagesConfig sc;
  sc.tokens = static_cast<size_t>(threads) * 4;
  sc.task = task.get();
  sc.ctx = &ctx;
  sc.writer = &writer;
  // Our own arena, not tbb::global_control: the thread count is this run's,
  // not the process's.
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::flow::graph g;
    std::unique_ptr<ConvertNodes> nodes = AddConvertStages(g, sc);
    tbb::flow::input_node<ConvertBatchPtr> reader(g, UnitReader(task.get()));
    tbb::flow::make_edge(reader, nodes->entry());
    reader.activate();
    g.wait_for_all();
  });
  progress.Finish();
  writer.Finish();
  summary.rejects = rejects.count();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::string FormatSummary(const ConvertOptions& o, const ConvertSummary& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %llu examples (%llu written, %llu kept) in %.2fs, %llu rejects, %llu dropped for missing images",
                o.task.c_str(), static_cast<unsigned long long>(s.examples),
                static_cast<unsigned long long>(s.written), static_cast<unsigned long long>(s.resumed), s.seconds,
                static_cast<unsigned long long>(s.rejects), static_cast<unsigned long long>(s.missing_images));
  std::string out = buf;
  for (const auto& d : s.dbs) out += "\n  -> " + d;
  if (s.rejects) out += "\n  rejects: " + s.rejects_path;
  return out;
}

}  // namespace uniter::converters
