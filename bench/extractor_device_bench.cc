// Extractor network benchmark for the GPU machine (scripts/device-check.sh),
// without OpenCV: images preprocessed exactly as BUTD by
// scripts/device/preprocess.py (raw float32 HWC blobs + index.tsv) go through
// Detector (detector.h) on one device. For every precision x channels-last x
// batch size it prints images/s end to end (host blob -> device -> outputs
// back on the host) and the split backbone / proposals / ROI heads /
// selection, then the fp16/bf16 feature error against fp32 on the same boxes.
//
// usage: extractor_device_bench --prototxt P --weights W
//          [--make-weights [--narrow]] --images DIR [--device cuda:0] [--batches 1,4,8]
//          [--precisions fp32,fp16,bf16] [--channels-last 0,1]
//          [--images-per-config 32] [--out TABLE.md]
// --make-weights writes W (full-size synthetic weights) unless it exists;
// --narrow makes them 1/8 wide with 3 res4 blocks and writes W.prototxt to
// go with them (quick runs on a CPU).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "extractor/detector.h"
#include "extractor/synthetic_model.h"
#include "tests/extractor/compare_util.h"

namespace {

namespace ex = uniter::extractor;
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Args {
  std::string prototxt, weights, images, device = "cuda:0", out;
  bool make_weights = false, narrow = false;
  std::vector<int> batches{1, 4, 8};
  std::vector<std::string> precisions{"fp32", "fp16", "bf16"};
  std::vector<int> channels_last{0, 1};
  int images_per_config = 32;
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw uniter::UsageError(k + " needs a value");
      return argv[++i];
    };
    if (k == "--prototxt") a.prototxt = value();
    else if (k == "--weights") a.weights = value();
    else if (k == "--make-weights") a.make_weights = true;
    else if (k == "--narrow") a.narrow = true;
    else if (k == "--images") a.images = value();
    else if (k == "--device") a.device = value();
    else if (k == "--out") a.out = value();
    else if (k == "--images-per-config") a.images_per_config = std::stoi(value());
    else if (k == "--precisions") a.precisions = Split(value());
    else if (k == "--batches" || k == "--channels-last") {
      std::vector<int> v;
      for (const auto& s : Split(value())) v.push_back(std::stoi(s));
      (k == "--batches" ? a.batches : a.channels_last) = v;
    } else {
      throw uniter::UsageError("unknown argument " + k);
    }
  }
  if (a.prototxt.empty() || a.weights.empty() || a.images.empty())
    throw uniter::UsageError("need --prototxt, --weights and --images");
  return a;
}

struct Blob {
  std::string name;
  ex::ImageInfo info;
  at::Tensor hwc;  // float32 [H,W,3]
};

// index.tsv: name, input height, width, scale, original height, width.
std::vector<Blob> LoadBlobs(const std::string& dir) {
  std::ifstream index(dir + "/index.tsv");
  if (!index) throw uniter::IoError("cannot open " + dir + "/index.tsv");
  std::vector<Blob> out;
  std::string name;
  int64_t h, w;
  double scale;
  int oh, ow;
  while (index >> name >> h >> w >> scale >> oh >> ow) {
    Blob b{name, {oh, ow, scale}, torch::empty({h, w, 3}, torch::kFloat)};
    std::ifstream f(dir + "/" + name + ".bin", std::ios::binary);
    f.read(static_cast<char*>(b.hwc.data_ptr()), static_cast<std::streamsize>(b.hwc.nbytes()));
    if (!f) throw uniter::FormatError("short blob, expected " + std::to_string(b.hwc.nbytes()) + " bytes", name);
    out.push_back(std::move(b));
  }
  return out;
}

struct Batch {
  at::Tensor input;  // [B,3,H,W] view of host memory
  std::vector<ex::ImageInfo> infos;
};

// Fixed batches cycling over `group` (all of one input size), enough for `n` images.
std::vector<Batch> MakeBatches(const std::vector<const Blob*>& group, int batch, int n) {
  std::vector<Batch> out;
  size_t next = 0;
  for (int done = 0; done < n; done += batch) {
    std::vector<at::Tensor> parts;
    Batch b;
    for (int k = 0; k < batch; ++k, ++next) {
      const Blob* blob = group[next % group.size()];
      parts.push_back(blob->hwc);
      b.infos.push_back(blob->info);
    }
    b.input = torch::stack(parts).permute({0, 3, 1, 2});
    out.push_back(std::move(b));
  }
  return out;
}

using uniter::extractor::compare::Iou;
using uniter::extractor::compare::RelErr;

// Share of `want`'s first 10 boxes that `got` selected too (a box of IoU >=
// 0.9: rounding moves proposals by fractions of a pixel).
double TopBoxAgreement(const ex::RegionFeatures& got, const ex::RegionFeatures& want) {
  const int n = std::min(10, want.num_boxes);
  int found = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < got.num_boxes; ++j)
      if (Iou(&want.boxes[4 * i], &got.boxes[4 * j]) >= 0.9) {
        ++found;
        break;
      }
  return n ? static_cast<double>(found) / n : 1.0;
}

int Run(Args a) {
  if (a.make_weights) {
    ex::SyntheticModelOptions o;
    o.prototxt = a.prototxt;
    o.out_caffemodel = a.weights;
    if (a.narrow) {
      o.channel_divisor = 8;
      o.res4_blocks = 3;
      o.out_prototxt = a.prototxt = a.weights + ".prototxt";
    }
    if (!std::filesystem::exists(a.weights) || !std::filesystem::exists(a.prototxt)) {
      const auto t = Clock::now();
      const int64_t n = ex::WriteSyntheticModel(o);
      std::printf("synthetic %s weights: %lld parameters, %.1f s\n", a.narrow ? "narrow" : "full-size",
                  static_cast<long long>(n), Since(t));
    }
  }
  const std::vector<Blob> blobs = LoadBlobs(a.images);
  if (blobs.empty()) throw uniter::UsageError("no images in " + a.images);
  std::map<std::pair<int64_t, int64_t>, std::vector<const Blob*>> groups;
  for (const Blob& b : blobs) groups[{b.hwc.size(0), b.hwc.size(1)}].push_back(&b);
  const std::vector<const Blob*>* group = nullptr;
  for (const auto& [size, g] : groups)
    if (!group || g.size() > group->size()) group = &g;
  const int64_t in_h = (*group)[0]->hwc.size(0), in_w = (*group)[0]->hwc.size(1);
  std::printf("torch %s, device %s, %zu images; timing the %zu of input size %lldx%lld, %d images per config\n",
              TORCH_VERSION, a.device.c_str(), blobs.size(), group->size(), static_cast<long long>(in_h),
              static_cast<long long>(in_w), a.images_per_config);

  std::ostringstream table;
  table << "| precision | channels-last | batch | images/s | backbone ms/img | proposals ms/img | "
           "ROI heads ms/img | selection ms/img | boxes/img |\n|---|---|---|---|---|---|---|---|---|\n";
  // fp32 results on the first images, the reference of the precision check.
  std::vector<ex::RegionFeatures> reference;
  std::ostringstream errors;
  for (const std::string& precision : a.precisions)
    for (int cl : a.channels_last) {
      ex::ExtractorConfig config;
      config.device = a.device;
      config.precision = precision;
      config.channels_last = cl != 0;
      const auto t_load = Clock::now();
      const ex::Detector det(a.prototxt, a.weights, config);
      std::printf("%s channels-last %d: load %.1f s\n", precision.c_str(), cl, Since(t_load));
      for (int batch : a.batches) {
        const std::vector<Batch> batches = MakeBatches(*group, batch, a.images_per_config);
        for (const Batch& b : batches) det.Detect(b.input, b.infos);  // warm-up: allocator, kernels
        int images = 0, boxes = 0;
        auto t = Clock::now();
        for (const Batch& b : batches)
          for (const auto& r : det.Detect(b.input, b.infos)) {
            ++images;
            boxes += r.num_boxes;
          }
        const double rate = images / Since(t);
        ex::StageTimes times;
        for (const Batch& b : batches) det.Detect(b.input, b.infos, &times);
        char row[512];
        std::snprintf(row, sizeof(row), "| %s | %s | %d | %.1f | %.2f | %.2f | %.2f | %.2f | %.1f |\n",
                      precision.c_str(), cl ? "on" : "off", batch, rate, 1e3 * times.backbone / images,
                      1e3 * times.proposals / images, 1e3 * times.roi_heads / images, 1e3 * times.selection / images,
                      static_cast<double>(boxes) / images);
        std::printf("%s", row);
        std::fflush(stdout);
        table << row;
      }
      // Precision check on the first (up to) 4 images of the group, one at a time.
      if (cl != a.channels_last.front()) continue;
      const std::vector<Batch> singles = MakeBatches(*group, 1, std::min<int>(4, static_cast<int>(group->size())));
      double worst = 0, worst_prob = 0, agree = 0;
      for (size_t i = 0; i < singles.size(); ++i) {
        const ex::RegionFeatures own = det.Detect(singles[i].input, singles[i].infos).front();
        if (precision == "fp32" && reference.size() < singles.size()) reference.push_back(own);
        if (i >= reference.size()) continue;
        const ex::RegionFeatures same = det.DetectBoxes(singles[i].input, singles[i].infos[0], reference[i].boxes);
        worst = std::max(worst, RelErr(same.features, reference[i].features));
        worst_prob = std::max(worst_prob, RelErr(same.soft_labels, reference[i].soft_labels));
        agree += TopBoxAgreement(own, reference[i]) / static_cast<double>(singles.size());
      }
      char line[256];
      std::snprintf(line, sizeof(line),
                    "| %s | %.2e | %.2e | %.0f%% |\n", precision.c_str(), worst, worst_prob, 100 * agree);
      errors << line;
    }
  const std::string text = table.str() + "\n| precision | features max rel err vs fp32 (same boxes) | "
                                         "soft_labels max rel err | fp32's top-10 boxes also selected (IoU >= 0.9) |\n"
                                         "|---|---|---|---|\n" + errors.str();
  std::printf("\n%s", text.c_str());
  if (!a.out.empty()) std::ofstream(a.out) << text;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(Parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "extractor_device_bench: %s\n", e.what());
    return 1;
  }
}
