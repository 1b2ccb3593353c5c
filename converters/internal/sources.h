// Unit sources shared by the tasks: the lines of one or more text files, and
// the elements of JSON lists in loaded documents.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "converters/internal/readers.h"
#include "converters/internal/task.h"

namespace uniter::converters {

// Lines of the annotation files `files` (indices into --ann), in order; blank
// lines are skipped. Not thread safe.
class LinesSource {
 public:
  LinesSource() = default;
  LinesSource(const TaskContext& ctx, std::vector<uint32_t> files) : ctx_(&ctx), files_(std::move(files)) {}

  bool Next(Unit* u) {
    while (true) {
      if (!reader_) {
        if (next_ >= files_.size()) return false;
        current_ = files_[next_++];
        reader_ = std::make_unique<LineReader>(ctx_->Annotation(current_));
      }
      std::string line;
      long number = 0;
      if (!reader_->Next(&line, &number)) {
        reader_.reset();
        continue;
      }
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      u->file = current_;
      u->line = number;
      u->text = std::move(line);
      return true;
    }
  }

 private:
  const TaskContext* ctx_ = nullptr;
  std::vector<uint32_t> files_;
  size_t next_ = 0;
  uint32_t current_ = 0;
  std::unique_ptr<LineReader> reader_;
};

// Elements of JSON lists, each tagged with the file it came from.
class ElementsSource {
 public:
  void Add(uint32_t file, simdjson::dom::array list) {
    for (simdjson::dom::element e : list) items_.push_back({file, e});
  }
  size_t size() const { return items_.size(); }
  bool Next(Unit* u) {
    if (next_ >= items_.size()) return false;
    u->file = items_[next_].first;
    u->line = 0;
    u->elem = items_[next_].second;
    u->index = next_++;
    return true;
  }

 private:
  std::vector<std::pair<uint32_t, simdjson::dom::element>> items_;
  size_t next_ = 0;
};

// Runs `f`; an Error without a location gets `key` as its location, so the
// reject names the record.
template <typename F>
void WithKey(const std::string& key, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    if (!e.where().empty() || key.empty()) throw;
    throw FormatError(e.message(), key);
  }
}

}  // namespace uniter::converters
