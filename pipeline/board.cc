#include "pipeline/board.h"

#include <unistd.h>

#include <cstdio>

#include "common/progress.h"

namespace uniter::pipeline {

Board::Board(std::vector<std::string> stages, bool quiet)
    : order_(std::move(stages)), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {
  for (const auto& s : order_) rows_[s];
  if (!quiet_) drawer_ = std::thread([this] { Loop(); });
}

Board::~Board() { Stop(); }

void Board::Start(const std::string& stage) {
  std::lock_guard lock(mu_);
  rows_[stage].state = "running";
  rows_[stage].start = std::chrono::steady_clock::now();
  if (!tty_) Log("pipeline: " + stage + " started");
}

void Board::Update(const std::string& stage, const std::string& what) {
  std::lock_guard lock(mu_);
  rows_[stage].what = what;
}

void Board::Done(const std::string& stage, const std::string& summary, bool skipped) {
  std::lock_guard lock(mu_);
  Row& r = rows_[stage];
  r.state = skipped ? "skipped" : "done";
  r.what = skipped ? "up to date" : HumanDuration(std::chrono::duration<double>(std::chrono::steady_clock::now() - r.start).count());
  Log("pipeline: " + stage + (skipped ? " up to date (manifest matches)" : " done: " + summary));
}

void Board::Fail(const std::string& stage) {
  std::lock_guard lock(mu_);
  rows_[stage].state = "failed";
}

std::string Board::Line() {
  std::string line;
  for (const auto& s : order_) {
    const Row& r = rows_[s];
    std::string state = r.state;
    if (r.state == "running") {
      state = HumanDuration(std::chrono::duration<double>(std::chrono::steady_clock::now() - r.start).count());
      if (!r.what.empty()) state += " " + r.what;
    } else if (r.state == "done") {
      state = "ok";
    }
    line += (line.empty() ? "" : " | ") + s + ": " + state;
  }
  return line;
}

void Board::Log(const std::string& line) {
  if (quiet_) return;
  if (tty_) std::fprintf(stderr, "\r\033[K%s\n%s", line.c_str(), Line().c_str());
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void Board::Loop() {
  std::unique_lock lock(mu_);
  const auto period = tty_ ? std::chrono::milliseconds(500) : std::chrono::milliseconds(10000);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    if (tty_) std::fprintf(stderr, "\r\033[K%s", Line().c_str());
    else std::fprintf(stderr, "pipeline: %s\n", Line().c_str());
    std::fflush(stderr);
  }
}

void Board::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (drawer_.joinable()) drawer_.join();
  if (!quiet_ && tty_) std::fprintf(stderr, "\r\033[K%s\n", Line().c_str());
}

}  // namespace uniter::pipeline
