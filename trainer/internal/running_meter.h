// UNITER's RunningMeter (utils/logger.py), the one loss meter of every loop.
#pragma once

#include <cmath>
#include <string>

namespace uniter::trainer {

// An exponential moving average of a scalar: the first value taken as is,
// then value * (1 - 0.99) + val * 0.99, in that order (the same doubles as
// UNITER's). An update whose result is NaN is dropped, as UNITER's
// math.isnan check: a NaN loss leaves the meter as it was (an infinite one
// is taken). `val` is 0 until a value is taken; `set` and `val` are what a
// training state saves.
struct RunningMeter {
  static constexpr double kSmooth = 0.99;

  std::string name;
  double val = 0;
  bool set = false;

  void Add(double value) {
    const double next = set ? value * (1 - kSmooth) + val * kSmooth : value;
    if (std::isnan(next)) return;
    val = next;
    set = true;
  }
};

}  // namespace uniter::trainer
