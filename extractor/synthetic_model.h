// Synthetic BUTD caffemodels: the real layer names and blob shapes of
// test.prototxt with random weights (the real resnet101_faster_rcnn_final
// .caffemodel is not redistributable), optionally narrowed for fast tests.
#pragma once

#include <cstdint>
#include <string>

#include "extractor/butd_net.h"

namespace uniter::extractor {

struct SyntheticModelOptions {
  // Source prototxt. Default: the built-in BUTD test.prototxt (butd_net.h).
  std::string prototxt = kButdTestPrototxt;
  // Output .caffemodel. Required.
  std::string out_caffemodel;
  // Output prototxt matching the weights. Default: empty (not written); needed
  // whenever the model is narrowed.
  std::string out_prototxt;
  // Divides the channels of the backbone, RPN conv, res5, embedding and
  // fc_attr; class, box and attribute outputs keep their sizes (1601, 6404,
  // 401). Default: 1 (full size).
  int channel_divisor = 1;
  // Residual blocks kept in res4 (res4a, res4b1, ... and always res4b22, so
  // every later layer keeps its name). Default: 23 (all).
  int res4_blocks = 23;
  // Default: 1.
  uint64_t seed = 1;
};

// Writes the model (and prototxt). Returns the number of parameters written.
// Throws FormatError for a prototxt it cannot follow, IoError on write.
int64_t WriteSyntheticModel(const SyntheticModelOptions& options);

}  // namespace uniter::extractor
