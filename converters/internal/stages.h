// The stages of `uniter convert` as objects, and the builder that wires them
// into a tbb::flow::graph the caller owns (RunConvert's, or a larger
// pipeline's):
//
//   UnitReader (serial, input order) -> entry (limiter) -> ConvertWork
//   (parallel) -> sequencer (input order) -> TxtDbWriterStage (serial) ->
//   release (parallel: frees the batch, gives the limiter token back) -> exit
//
// Batches carry a sequence number from the reader; the writer sees them in
// that order whatever the thread count, so the dbs and sidecars depend only
// on the inputs. A bad record is a reject (or, with --strict, a FormatError
// out of graph::wait_for_all).
#pragma once

#include <tbb/flow_graph.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/progress.h"
#include "common/rejects.h"
#include "converters/convert.h"
#include "converters/internal/json_writer.h"
#include "converters/internal/task.h"
#include "featdb/txt_db.h"

namespace uniter::converters {

// Up to kUnitsPerBatch input units, and what ConvertWork made of them.
struct ConvertBatch {
  static constexpr size_t kUnitsPerBatch = 128;
  uint64_t seq = 0;
  std::vector<Unit> units;
  std::vector<std::vector<Example>> examples;     // per unit
  std::vector<std::optional<Reject>> rejects;     // per unit
};
using ConvertBatchPtr = std::shared_ptr<ConvertBatch>;

// The reader: Task::Next into batches, numbered from 0. Not thread-safe: an
// input_node's body. `task` must outlive it.
class UnitReader {
 public:
  explicit UnitReader(Task* task) : task_(task) {}
  ConvertBatchPtr operator()(tbb::flow_control& fc);

 private:
  Task* task_;
  uint64_t next_seq_ = 0;
  bool done_ = false;
};

// The work: Task::Convert, then everything of a record that does not depend
// on the records before it (lz4(msgpack) value, JSON text of key and image
// names, hashes), so the writer only looks up and stores. Thread-safe.
class ConvertWork {
 public:
  ConvertWork(const Task* task, const TaskContext* ctx) : task_(task), ctx_(ctx) {}
  ConvertBatchPtr operator()(ConvertBatchPtr batch) const;

 private:
  const Task* task_;
  const TaskContext* ctx_;
};

// A set of names (a db's keys, its image names): open addressing over indices
// into a store, probed with the hash the parallel stage computed, so the
// serial writer neither hashes a key nor allocates per key.
class KeySet {
 public:
  struct Slot {
    size_t hash = 0;
    uint32_t index = 0;  // 1 + index into the store; 0 = empty
  };
  // The slot holding `key`, or the empty slot where it goes (then Fill it
  // before the next Find). `name_at(i)` is the name stored at index i.
  template <typename NameAt>
  Slot& Find(std::string_view key, size_t hash, NameAt name_at) {
    if ((count_ + 1) * 2 > slots_.size()) Grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.index == 0 || (s.hash == hash && std::string_view(name_at(s.index - 1)) == key)) return s;
    }
  }
  void Fill(Slot& s, size_t hash, uint32_t index) {
    s = {hash, index + 1};
    ++count_;
  }

 private:
  void Grow();

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

// The writer: owns the dbs, their sidecars and the summary counts; adds
// rejects. Opens every db on construction, so an existing one is refused
// before anything is written. Not thread-safe: a serial node's body (held by
// pointer, as flow nodes copy their bodies). Finish() after the graph ran.
class TxtDbWriterStage {
 public:
  TxtDbWriterStage(const ConvertOptions& options, const tokenizer::Tokenizer& toker, Task* task,
                   const TaskContext* ctx, RejectsFile* rejects, Progress* progress, ConvertSummary* summary);
  ~TxtDbWriterStage();
  void Write(ConvertBatch& batch);
  // Commits, writes id2len/txt2img/img2txts/meta.json and the task's own
  // sidecars, closes the dbs.
  void Finish();

 private:
  struct DbState;
  void WriteExample(const Unit& unit, Example& ex);
  // Adds `r`; with --strict throws instead: FormatError(strict_message, r.file)
  // when given, else r.reason at the record's file, line and key.
  void AddReject(const Reject& r, const std::string& strict_message);

  const ConvertOptions& options_;
  const tokenizer::Tokenizer& toker_;
  Task* task_;
  const TaskContext* ctx_;
  RejectsFile* rejects_;
  Progress* progress_;
  ConvertSummary* summary_;
  std::unordered_set<std::string> missing_;
  std::map<std::string, std::unique_ptr<DbState>> dbs_;
};

// What the stages share; every pointer must outlive the graph's run.
struct ConvertStagesConfig {
  size_t tokens = 8;  // batches between entry and release at most
  const Task* task = nullptr;
  const TaskContext* ctx = nullptr;
  TxtDbWriterStage* writer = nullptr;
};

// The nodes AddConvertStages made: owned here, run by the caller's graph.
class ConvertNodes {
 public:
  // Put batches here in seq order (an input_node(UnitReader) edge).
  tbb::flow::receiver<ConvertBatchPtr>& entry();
  // One continue_msg per batch written.
  tbb::flow::sender<tbb::flow::continue_msg>& exit();

 private:
  friend std::unique_ptr<ConvertNodes> AddConvertStages(tbb::flow::graph& g, const ConvertStagesConfig& c);
  std::unique_ptr<tbb::flow::limiter_node<ConvertBatchPtr>> limiter_;
  std::unique_ptr<tbb::flow::function_node<ConvertBatchPtr, ConvertBatchPtr>> work_;
  std::unique_ptr<tbb::flow::sequencer_node<ConvertBatchPtr>> in_order_;
  std::unique_ptr<tbb::flow::function_node<ConvertBatchPtr, ConvertBatchPtr>> writer_;
  std::unique_ptr<tbb::flow::function_node<ConvertBatchPtr, tbb::flow::continue_msg>> release_;
};

// Adds the convert stages to `g` and wires them; see the file comment.
std::unique_ptr<ConvertNodes> AddConvertStages(tbb::flow::graph& g, const ConvertStagesConfig& c);

}  // namespace uniter::converters
