// One configuration for every stage of the BUTD extractor. Defaults are BUTD's
// (lib/fast_rcnn/config.py, experiments/cfgs/faster_rcnn_end2end_resnet.yml,
// tools/generate_tsv.py).
#pragma once

#include <array>
#include <string>
#include <vector>

namespace uniter::extractor {

struct ExtractorConfig {
  // Preprocessing (test.py _get_image_blob). BGR pixel means.
  std::array<double, 3> pixel_means{102.9801, 115.9465, 122.7717};
  int target_size = 600;  // Default: 600 (cfg.TEST.SCALES), short side.
  int max_size = 1000;    // Default: 1000 (cfg.TEST.MAX_SIZE), long side cap.

  // Proposals (rpn/proposal_layer.py, cfg.TEST.RPN_*).
  int feat_stride = 16;
  std::vector<double> anchor_scales{4, 8, 16, 32};
  std::vector<double> anchor_ratios{0.5, 1, 2};
  int pre_nms_top_n = 6000;
  int post_nms_top_n = 300;
  double rpn_nms_threshold = 0.7;
  double rpn_min_size = 16;

  // Box selection (generate_tsv.py get_detections_from_im).
  double nms_threshold = 0.3;  // cfg.TEST.NMS, per class over classes 1..C-1
  double conf_threshold = 0.2;
  int min_boxes = 10;
  int max_boxes = 100;

  // Compute. "cpu", "cuda" or "cuda:N" (a CUDA LibTorch and a GPU, checked
  // at run time; otherwise UsageError naming the device). Weights move there
  // once at load; outputs come back to the CPU. Default: "cpu".
  std::string device = "cpu";
  // fp32, fp16 or bf16: the convolutions (backbone, RPN, res5) in that type,
  // weights cast once at load; the score heads, softmax, proposals, NMS, box
  // math and every output stay fp32. LibTorch 1.13 has no CPU fp16
  // convolution. Default: fp32 (BUTD's numbers).
  std::string precision = "fp32";
  bool channels_last = false;  // NHWC convolutions (faster with fp16/bf16 on GPUs). Default: false.
};

}  // namespace uniter::extractor
