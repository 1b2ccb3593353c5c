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

  // Compute. "cpu" or "cuda:N" (builds against a CUDA LibTorch).
  std::string device = "cpu";
  // fp32, fp16 or bf16: autocast of convolutions and matrix products; every
  // output array stays fp32. Default: fp32 (BUTD's numbers).
  std::string precision = "fp32";
  bool channels_last = false;  // NHWC convolutions (faster with fp16/bf16 on GPUs)
};

}  // namespace uniter::extractor
