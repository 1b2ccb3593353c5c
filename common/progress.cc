#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

namespace uniter {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string HumanCount(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

std::string HumanDuration(double s) {
  char buf[32];
  if (s < 0) s = 0;
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

Progress::Progress(std::string label, uint64_t total, bool quiet)
    : label_(std::move(label)), total_(total), quiet_(quiet),
      tty_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { Finish(); }

double Progress::ElapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::SetTotal(uint64_t total) { total_.store(total); }

void Progress::Add(uint64_t n) {
  const uint64_t now_count = count_.fetch_add(n, std::memory_order_relaxed) + n;
  if (observer_) observer_(now_count, total_.load(std::memory_order_relaxed));
  if (quiet_) return;
  const int64_t now = NowNs();
  int64_t next = next_draw_ns_.load(std::memory_order_relaxed);
  if (now < next) return;
  // A TTY redraws 10 times a second; a log gets a line every 10 seconds.
  const int64_t step = tty_ ? 100'000'000 : 10'000'000'000;
  if (!next_draw_ns_.compare_exchange_strong(next, now + step)) return;
  if (next == 0) return;  // first call only arms the timer
  Draw(false);
}

void Progress::Draw(bool final_line) {
  std::lock_guard<std::mutex> lock(draw_mu_);
  const double elapsed = ElapsedSeconds();
  const uint64_t c = count_.load();
  const uint64_t t = total_.load();
  const double rate = elapsed > 0 ? c / elapsed : 0.0;
  std::string line = label_ + ": " + HumanCount(static_cast<double>(c));
  if (t > 0) {
    char pct[32];
    std::snprintf(pct, sizeof pct, "/%s (%.1f%%)", HumanCount(static_cast<double>(t)).c_str(),
                  100.0 * static_cast<double>(c) / static_cast<double>(t));
    line += pct;
  }
  // Slow runs (the extractor on a CPU: < 1 image/s) need decimals.
  char slow[32];
  std::snprintf(slow, sizeof slow, rate < 10 ? "%.2f" : "%.1f", rate);
  line += "  " + (rate < 100 ? std::string(slow) : HumanCount(rate)) + "/s";
  if (final_line) {
    line += "  in " + HumanDuration(elapsed);
  } else if (t > 0 && rate > 0 && c <= t) {
    line += "  ETA " + HumanDuration(static_cast<double>(t - c) / rate);
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!quiet_) Draw(true);
}

}  // namespace uniter
