// Extractor benchmark: images/s end to end on real photos and the split into
// decode / preprocess / backbone / proposals (RPN + NMS) / ROI heads /
// selection (per-class NMS) / encode+write. Weights: any caffemodel, normally
// the full-size synthetic one (bench/run_extractor.sh makes it). Batches are
// images of one network input size (ExtractBatch needs that): the largest
// such group of IMAGE_DIR is used.
//
// usage: extractor_bench PROTOTXT CAFFEMODEL IMAGE_DIR [REPEAT] [--batch N]
//          [--precision fp32|fp16|bf16] [--channels-last] [--device D] [--max-images N]
//          [--warmup BATCHES (default 1)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "extractor/extractor.h"
#include "extractor/preprocess.h"
#include "featdb/array.h"
#include "featdb/img_db.h"

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  namespace ex = uniter::extractor;
  std::vector<std::string> pos;
  ex::ExtractorConfig config;
  int batch = 1, max_images = 1 << 30, warmup = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--batch" && has_value) batch = std::stoi(argv[++i]);
    else if (a == "--precision" && has_value) config.precision = argv[++i];
    else if (a == "--device" && has_value) config.device = argv[++i];
    else if (a == "--max-images" && has_value) max_images = std::stoi(argv[++i]);
    else if (a == "--warmup" && has_value) warmup = std::stoi(argv[++i]);
    else if (a == "--channels-last") config.channels_last = true;
    else pos.push_back(a);
  }
  if (pos.size() < 3 || batch < 1) {
    std::fprintf(stderr,
                 "usage: %s PROTOTXT CAFFEMODEL IMAGE_DIR [REPEAT] [--batch N] [--precision P] "
                 "[--channels-last] [--device D] [--max-images N]\n",
                 argv[0]);
    return 2;
  }
  const int repeat = pos.size() > 3 ? std::stoi(pos[3]) : 1;
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(pos[2]))
    if (e.is_regular_file()) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  // The largest group of one input size, first max_images of it.
  std::map<std::pair<int, int>, std::vector<std::string>> groups;
  for (const std::string& p : paths) {
    const cv::Mat m = cv::imread(p, cv::IMREAD_COLOR);
    if (!m.empty()) groups[ex::InputSize(m.rows, m.cols, config)].push_back(p);
  }
  std::vector<std::string> chosen;
  for (const auto& [size, g] : groups)
    if (g.size() > chosen.size()) chosen = g;
  if (chosen.empty()) {
    std::fprintf(stderr, "no images in %s\n", pos[2].c_str());
    return 1;
  }
  if (static_cast<int>(chosen.size()) > max_images) chosen.resize(max_images);
  std::printf("config: batch %d, %s, channels-last %s, device %s; %zu images of one input size\n", batch,
              config.precision.c_str(), config.channels_last ? "on" : "off", config.device.c_str(), chosen.size());
  const auto t_load = Clock::now();
  const ex::Extractor extractor(pos[0], pos[1], config);
  std::printf("model load: %.2f s\n", Since(t_load));
  const std::string out = (std::filesystem::temp_directory_path() / "uniter_extractor_bench_db").string();
  std::filesystem::remove_all(out);
  uniter::featdb::ImgDbOptions db;
  db.force = true;
  uniter::featdb::ImgDbWriter writer(out, db);
  // Warm-up batches (allocator, thread pool); 0 where one image takes minutes.
  for (int w = 0; w < warmup; ++w) {
    std::vector<cv::Mat> warm;
    for (int k = 0; k < batch; ++k) warm.push_back(cv::imread(chosen[k % chosen.size()], cv::IMREAD_COLOR));
    extractor.ExtractBatch(warm);
  }
  ex::StageTimes times;
  double decode = 0, write = 0;
  int images = 0, boxes = 0;
  std::vector<std::string> work;
  for (int r = 0; r < repeat; ++r) work.insert(work.end(), chosen.begin(), chosen.end());
  const auto t0 = Clock::now();
  for (size_t start = 0; start < work.size(); start += batch) {
    auto t = Clock::now();
    std::vector<cv::Mat> mats;
    for (size_t k = start; k < std::min(work.size(), start + batch); ++k)
      mats.push_back(cv::imread(work[k], cv::IMREAD_COLOR));
    decode += Since(t);
    const std::vector<ex::RegionFeatures> results = extractor.ExtractBatch(mats, &times);
    t = Clock::now();
    for (const ex::RegionFeatures& f : results) {
      using uniter::featdb::Array;
      std::vector<Array> arrays{Array::FromFloat32("features", {f.num_boxes, f.feature_dim}, f.features),
                                Array::FromFloat32("norm_bb", {f.num_boxes, 6}, f.norm_bb),
                                Array::FromFloat32("conf", {f.num_boxes}, f.conf),
                                Array::FromFloat32("soft_labels", {f.num_boxes, f.num_classes}, f.soft_labels)};
      writer.Put(std::to_string(images) + ".npz", arrays);
      ++images;
      boxes += f.num_boxes;
    }
    write += Since(t);
  }
  writer.Close();
  const double total = Since(t0);
  std::printf("images: %d (%d boxes), %.2f s, %.3f images/s\n", images, boxes, total, images / total);
  std::printf("per image (ms): decode %.1f | preprocess %.1f | backbone %.1f | proposals (RPN+NMS) %.1f | "
              "roi heads %.1f | selection (per-class NMS) %.1f | encode+write %.1f\n",
              1e3 * decode / images, 1e3 * times.preprocess / images, 1e3 * times.backbone / images,
              1e3 * times.proposals / images, 1e3 * times.roi_heads / images, 1e3 * times.selection / images,
              1e3 * write / images);
  std::filesystem::remove_all(out);
  return 0;
}
