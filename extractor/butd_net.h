// BUTD's network, built into the binary: the layer graph of
// bottom-up-attention's ResNet-101 Faster R-CNN (Visual Genome, 1600 object
// and 400 attribute classes) as its test.prototxt (RPN proposals) and
// test_gt.prototxt (given boxes as the `rois` input) describe it. The graph
// is fixed; users have only the .caffemodel, so `uniter extract` needs no
// --prototxt. The text is generated from the ResNet-101 recipe (stage widths,
// block counts, strides, res5's dilation), not copied.
#pragma once

#include <optional>
#include <string>

namespace uniter::extractor {

// Prototxt "paths" that ReadPrototxt resolves to the built-in text.
inline constexpr char kButdTestPrototxt[] = "builtin:butd/test.prototxt";
inline constexpr char kButdTestGtPrototxt[] = "builtin:butd/test_gt.prototxt";

// The prototxt text; `given_boxes`: test_gt.prototxt (no RPN, a `rois` input).
std::string ButdPrototxtText(bool given_boxes);

// The text of a "builtin:..." name above; nullopt for any other path.
std::optional<std::string> BuiltinPrototxt(const std::string& path);

}  // namespace uniter::extractor
