// `uniter convert <task>`: official raw annotation files of a benchmark →
// txt_db records whose fields, ids and sidecars are what UNITER's datasets
// (data/*.py) read. One task per benchmark (converters/<dataset>.cc, listed in
// converters/converter_list.inc); one shared engine (converters/engine.cc).
//
// The engine reads the inputs in order, converts and tokenizes records in
// parallel (TBB), and writes them through one ordered writer, so the db is the
// same whatever the thread count. Bad records go to a rejects file and the run
// goes on (unless `strict`).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace uniter::tokenizer {
class Tokenizer;
}

namespace uniter::converters {

struct ConvertOptions {
  std::string task;                      // a name from Tasks(); required
  std::vector<std::string> annotations;  // --ann, in order; required
  std::string vocab;                     // --vocab (WordPiece vocab.txt) or
  std::string spm;                       // --spm (SentencePiece model); one is required
  std::optional<bool> lower;             // --lower / --cased. Default: from the vocab name
  std::string output;                    // --output: the db dir (or, for multi-db tasks, their parent)
  int threads = 0;                       // 0 = all cores
  bool resume = false;                   // keep records already in the db, add the rest
  bool force = false;                    // delete an existing db first
  bool strict = false;                   // first bad record is an error
  bool quiet = false;                    // no progress output
  std::string missing_imgs;              // JSON list of feature file names to drop examples for
  std::string rejects;                   // Default: <output>/rejects.jsonl
  // Task flags (TaskInfo::flags), by name without dashes; repeatable ones hold several values.
  std::map<std::string, std::vector<std::string>> task_options;
};

struct ConvertSummary {
  uint64_t examples = 0;         // records in the dbs (written now or kept by --resume)
  uint64_t written = 0;          // records written by this run
  uint64_t resumed = 0;          // records already present (--resume)
  uint64_t rejects = 0;          // bad records (see rejects_path)
  uint64_t missing_images = 0;   // examples dropped by --missing-imgs
  std::vector<std::string> dbs;  // db dirs written
  std::string rejects_path;
  double seconds = 0;
};

// A task-specific flag: `--<name> VALUE`.
struct TaskFlag {
  std::string name;
  std::string help;
  bool repeatable = false;
};

struct TaskInfo {
  std::string name;     // e.g. "nlvr2"
  std::string summary;  // one line
  std::string help;     // inputs, outputs, ids, image names
  std::vector<TaskFlag> flags;
};

// Every task, in converter_list.inc order.
const std::vector<TaskInfo>& Tasks();

// Runs a conversion, creating the tokenizer from options.vocab/spm/lower.
// Throws UsageError for bad options or an existing db, IoError/FormatError
// for unreadable inputs (and for the first bad record when strict).
ConvertSummary RunConvert(const ConvertOptions& options);

// Same with a tokenizer the caller owns (benchmarks, tests).
ConvertSummary RunConvert(const ConvertOptions& options, const tokenizer::Tokenizer& toker);

// One line for the CLI: "nlvr2: 6982 examples in 1.2s (0 rejects) -> dir".
std::string FormatSummary(const ConvertOptions& options, const ConvertSummary& summary);

}  // namespace uniter::converters
