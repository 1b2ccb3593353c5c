// Extractor benchmark: images/s end to end on real photos and the split into
// decode / preprocess / backbone / proposals (RPN + NMS) / ROI heads /
// selection (per-class NMS) / encode+write. Weights: any caffemodel, normally
// the full-size synthetic one (bench/run_extractor.sh makes it).
//
// usage: extractor_bench PROTOTXT CAFFEMODEL IMAGE_DIR [REPEAT]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "extractor/extractor.h"
#include "featdb/array.h"
#include "featdb/img_db.h"

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s PROTOTXT CAFFEMODEL IMAGE_DIR [REPEAT]\n", argv[0]);
    return 2;
  }
  const int repeat = argc > 4 ? std::stoi(argv[4]) : 1;
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(argv[3]))
    if (e.is_regular_file()) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  namespace ex = uniter::extractor;
  const auto t_load = Clock::now();
  const ex::Extractor extractor(argv[1], argv[2], ex::ExtractorConfig{});
  std::printf("model load: %.2f s\n", Since(t_load));
  const std::string out = (std::filesystem::temp_directory_path() / "uniter_extractor_bench_db").string();
  std::filesystem::remove_all(out);
  uniter::featdb::ImgDbOptions db;
  db.force = true;
  uniter::featdb::ImgDbWriter writer(out, db);
  // One warm-up image (allocator, thread pool).
  extractor.Extract(cv::imread(paths[0], cv::IMREAD_COLOR));
  ex::StageTimes times;
  double decode = 0, write = 0;
  int images = 0, boxes = 0;
  const auto t0 = Clock::now();
  for (int r = 0; r < repeat; ++r)
    for (const std::string& p : paths) {
      auto t = Clock::now();
      const cv::Mat bgr = cv::imread(p, cv::IMREAD_COLOR);
      decode += Since(t);
      const ex::RegionFeatures f = extractor.Extract(bgr, &times);
      t = Clock::now();
      using uniter::featdb::Array;
      std::vector<Array> arrays{Array::FromFloat32("features", {f.num_boxes, f.feature_dim}, f.features),
                                Array::FromFloat32("norm_bb", {f.num_boxes, 6}, f.norm_bb),
                                Array::FromFloat32("conf", {f.num_boxes}, f.conf),
                                Array::FromFloat32("soft_labels", {f.num_boxes, f.num_classes}, f.soft_labels)};
      writer.Put(std::to_string(images) + ".npz", arrays);
      write += Since(t);
      ++images;
      boxes += f.num_boxes;
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
