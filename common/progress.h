// Progress reporting for long runs: a redrawn bar (count, rate, ETA) on a TTY,
// a plain log line every few seconds otherwise, nothing when quiet.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace uniter {

// Thread safe: Add() may be called from any thread; drawing is rate-limited.
class Progress {
 public:
  // `total` 0 means unknown (no ETA, no percentage). `label` prefixes each line.
  Progress(std::string label, uint64_t total, bool quiet = false);
  ~Progress();  // calls Finish() if not yet called

  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(uint64_t n = 1);
  // `observer(count, total)` after every Add, on the adding thread (a
  // caller's own display; runs quiet or not). Set before the first Add.
  void OnAdd(std::function<void(uint64_t, uint64_t)> observer) { observer_ = std::move(observer); }
  void SetTotal(uint64_t total);
  // Prints the final line (count, elapsed, mean rate).
  void Finish();

  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double ElapsedSeconds() const;

 private:
  void Draw(bool final_line);

  std::string label_;
  std::atomic<uint64_t> total_;
  std::atomic<uint64_t> count_{0};
  bool quiet_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::atomic<int64_t> next_draw_ns_{0};
  std::function<void(uint64_t, uint64_t)> observer_;
  std::mutex draw_mu_;
};

// "1.2k", "3.4M": compact counts for progress lines.
std::string HumanCount(double v);
// "1m23s", "2h05m".
std::string HumanDuration(double seconds);

}  // namespace uniter
