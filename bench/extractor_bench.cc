// Extractor benchmark: images/s end to end on real photos and the split into
// decode / preprocess / backbone / proposals (RPN + NMS) / ROI heads /
// selection (per-class NMS) / encode+write. Weights: any caffemodel, normally
// the full-size synthetic one (bench/run_extractor.sh makes it). Batches are
// images of one network input size (ExtractBatch needs that): the largest
// such group of IMAGE_DIR is used.
//
// With --opencv, the peer in the same run: OpenCV's own Caffe importer
// (cv::dnn::readNetFromCaffe, its CPU backend) on the same prototxt, weights
// and preprocessed photos, one image at a time: backbone, RPN convolutions,
// ROI pooling of 300 regions (BUTD's post-NMS count; OpenCV cannot run the
// Python proposal layer, so the regions are given), res5 and the class/box
// heads. Prints both and the ratio.
//
// usage: extractor_bench PROTOTXT CAFFEMODEL IMAGE_DIR [REPEAT] [--batch N]
//          [--precision fp32|fp16|bf16] [--channels-last] [--device D] [--max-images N]
//          [--warmup BATCHES (default 1)] [--threads N (default: all cores)] [--opencv]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include <set>

#include "common/torch_runtime.h"
#include "extractor/caffe.pb.h"
#include "extractor/caffe_model.h"
#include "extractor/extractor.h"
#include "extractor/preprocess.h"
#include "featdb/array.h"
#include "featdb/img_db.h"

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The prototxt OpenCV can run: `rois` an input instead of the Python proposal
// layer; the attribute head (after an ArgMax + Embed OpenCV lacks) left out.
std::string WriteOpenCvPrototxt(const std::string& prototxt) {
  namespace ex = uniter::extractor;
  ex::caffe::NetParameter net, cv_net;
  ex::ReadPrototxt(prototxt, &net);
  cv_net.set_name(net.name());
  cv_net.add_input("data");
  *cv_net.add_input_shape() = net.input_shape(0);
  cv_net.add_input("rois");
  cv_net.add_input_shape()->add_dim(1);
  cv_net.mutable_input_shape(1)->add_dim(5);
  const std::set<std::string> dropped{"proposal",     "predicted_cls", "cls_embedding", "cls_embedding_flat",
                                      "concat_pool5", "fc_attr",       "relu_attr",     "attr_score",
                                      "attr_prob"};
  for (const auto& l : net.layer())
    if (l.type() != "Python" && !dropped.count(l.name())) *cv_net.add_layer() = l;
  const std::string path = (std::filesystem::temp_directory_path() / "uniter_extractor_bench_cv.prototxt").string();
  ex::WritePrototxt(path, cv_net);
  return path;
}

// 300 regions spread over the image (batch index, x1, y1, x2, y2 in network input pixels).
cv::Mat Regions(int height, int width) {
  cv::Mat rois(300, 5, CV_32F);
  for (int i = 0; i < 300; ++i) {
    const float x = static_cast<float>((i * 37) % width), y = static_cast<float>((i * 53) % height);
    const float w = 32.f + static_cast<float>((i * 29) % 256), h = 32.f + static_cast<float>((i * 41) % 256);
    rois.at<float>(i, 0) = 0;
    rois.at<float>(i, 1) = x;
    rois.at<float>(i, 2) = y;
    rois.at<float>(i, 3) = std::min(x + w, static_cast<float>(width - 1));
    rois.at<float>(i, 4) = std::min(y + h, static_cast<float>(height - 1));
  }
  return rois;
}

// Seconds per image of OpenCV's importer on `paths`, after one warm-up image.
double RunOpenCv(const std::string& prototxt, const std::string& caffemodel, const std::vector<std::string>& paths,
                 const uniter::extractor::ExtractorConfig& config) {
  const auto t_load = Clock::now();
  cv::dnn::Net net = cv::dnn::readNetFromCaffe(WriteOpenCvPrototxt(prototxt), caffemodel);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  std::printf("opencv model load: %.2f s\n", Since(t_load));
  double seconds = 0;
  for (size_t i = 0; i <= paths.size(); ++i) {
    const bool warmup = i == 0;
    const cv::Mat bgr = cv::imread(paths[warmup ? 0 : i - 1], cv::IMREAD_COLOR);
    const auto t = Clock::now();
    // The same network input our extractor feeds LibTorch (preprocess.h), as NCHW.
    const uniter::extractor::PreprocessedImage img = uniter::extractor::Preprocess(bgr, config);
    const cv::Mat blob = cv::dnn::blobFromImage(img.blob);
    net.setInput(blob, "data");
    net.setInput(Regions(img.blob.rows, img.blob.cols), "rois");
    std::vector<cv::Mat> outs;
    net.forward(outs, std::vector<cv::String>{"cls_prob", "bbox_pred"});
    if (!warmup) seconds += Since(t);
  }
  return seconds / static_cast<double>(paths.size());
}

}  // namespace

int main(int argc, char** argv) {
  namespace ex = uniter::extractor;
  std::vector<std::string> pos;
  ex::ExtractorConfig config;
  int batch = 1, max_images = 1 << 30, warmup = 1, threads = 0;
  bool opencv = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--batch" && has_value) batch = std::stoi(argv[++i]);
    else if (a == "--precision" && has_value) config.precision = argv[++i];
    else if (a == "--device" && has_value) config.device = argv[++i];
    else if (a == "--max-images" && has_value) max_images = std::stoi(argv[++i]);
    else if (a == "--warmup" && has_value) warmup = std::stoi(argv[++i]);
    else if (a == "--threads" && has_value) threads = std::stoi(argv[++i]);
    else if (a == "--opencv") opencv = true;
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
  // Both sides get the same threads: LibTorch's intra-op pool and OpenCV's.
  const int used = uniter::ConfigureTorchThreads(threads);
  cv::setNumThreads(used);
  std::printf("%s; OpenCV %s, %d threads\n", uniter::FormatTorchRuntime(uniter::DescribeTorchRuntime()).c_str(),
              CV_VERSION, cv::getNumThreads());
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
  if (opencv) {
    const double ours = total / images;
    const double theirs = RunOpenCv(pos[0], pos[1], chosen, config);
    std::printf("opencv importer: %.2f s/image; ours %.2f s/image end to end; ours/opencv = %.2f\n", theirs, ours,
                ours / theirs);
  }
  return 0;
}
