// Comparisons of two extractions, shared by the extractor tests and the GPU
// benchmark (bench/extractor_device_bench.cc): header-only, no test framework.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "extractor/synthetic_model.h"

namespace uniter::extractor::compare {

// max |a - b| / max |b| over the common prefix.
inline double RelErr(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 1e-20;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(b[i])));
  }
  return diff / scale;
}

// IoU of two x1, y1, x2, y2 boxes, Caffe's +1 pixel convention.
inline double Iou(const float* a, const float* b) {
  const float iw = std::min(a[2], b[2]) - std::max(a[0], b[0]) + 1, ih = std::min(a[3], b[3]) - std::max(a[1], b[1]) + 1;
  if (iw <= 0 || ih <= 0) return 0;
  const float inter = iw * ih;
  const float area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
  return inter / (area_a + area_b - inter);
}

// The narrow synthetic BUTD model the tests run (1/8 of the widths, 3 res4
// blocks): <dir>/narrow.prototxt and <dir>/narrow.caffemodel. Under ctest the
// fixture test extractor_narrow_model writes it once (same options, same
// default seed) into $UNITER_TEST_NARROW_MODEL: linked, not rewritten.
inline void WriteNarrowModel(const std::string& butd_prototxt, const std::string& dir) {
  namespace fs = std::filesystem;
  const char* made = std::getenv("UNITER_TEST_NARROW_MODEL");
  if (made && fs::exists(fs::path(made) / "narrow.caffemodel") && fs::exists(fs::path(made) / "narrow.prototxt")) {
    for (const char* f : {"narrow.prototxt", "narrow.caffemodel"}) {
      fs::remove(fs::path(dir) / f);
      fs::create_symlink(fs::path(made) / f, fs::path(dir) / f);
    }
    return;
  }
  SyntheticModelOptions o;
  o.prototxt = butd_prototxt;
  o.out_prototxt = dir + "/narrow.prototxt";
  o.out_caffemodel = dir + "/narrow.caffemodel";
  o.channel_divisor = 8;
  o.res4_blocks = 3;
  WriteSyntheticModel(o);
}

}  // namespace uniter::extractor::compare
