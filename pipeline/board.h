// The pipeline's one progress display: every stage's state on one line,
// redrawn twice a second on a terminal; otherwise a line per state change and
// a status line every 10 s. Thread safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace uniter::pipeline {

class Board {
 public:
  Board(std::vector<std::string> stages, bool quiet);
  ~Board();
  Board(const Board&) = delete;
  Board& operator=(const Board&) = delete;

  void Start(const std::string& stage);
  // `what`: the stage's own count ("step 40/200").
  void Update(const std::string& stage, const std::string& what);
  void Done(const std::string& stage, const std::string& summary, bool skipped);
  void Fail(const std::string& stage);
  void Stop();  // the final line; idempotent

 private:
  struct Row {
    std::string state = "waiting", what;
    std::chrono::steady_clock::time_point start;
  };
  std::string Line();  // with mu_ held
  void Loop();
  void Log(const std::string& line);  // with mu_ held

  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
  bool quiet_, tty_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread drawer_;
};

}  // namespace uniter::pipeline
