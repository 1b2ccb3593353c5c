// The inputs of `make demo` (and of the pipeline's tests), generated: images
// drawn with OpenCV, each one big shape (circle, square or triangle) in one
// colour on a light background; NLVR2-style statements about a left/right
// image pair (6 per pair, half true) whose truth follows from those colours; a WordPiece
// vocab of the statements' words; a narrow synthetic BUTD detector
// (extract-tools make-caffemodel's WriteSyntheticModel); a small UNITER model
// and train config; and the pipeline.json tying them together. `task` vqa
// draws the same pictures as COCO-named images with VQA v2 questions and
// annotations (colour, shape, yes/no; 10 human answers, some disagreeing);
// ve as Flickr30k-named images with SNLI-VE hypotheses (colour: entailment or
// contradiction; an unknowable property: neutral).
// Deterministic for a seed.
#pragma once

#include <cstdint>
#include <string>

namespace uniter::pipeline {

struct DemoOptions {
  std::string dir;          // everything goes here; pipeline.json at its top
  std::string task = "nlvr2";  // nlvr2, vqa or ve
  int train_pairs = 150;    // image pairs (2 images, 6 statements each); vqa/ve: 2 images each
  int dev_pairs = 50;
  int image_size = 160;     // square images, pixels
  int channel_divisor = 32; // detector width: 2048 / this feature dims
  int train_steps = 800;
  uint64_t seed = 7;
};

// Writes the demo inputs; returns the pipeline.json path.
std::string WriteDemoInputs(const DemoOptions& options);

}  // namespace uniter::pipeline
